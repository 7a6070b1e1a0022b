// What `train cl` knows of a continual-learning method, declared once in the method's own file
// (lora/methods/<file>.h, the struct <Name>Method after the class) and registered in lora/methods/registry.h:
// its name, whether it is one of the baselines, and its options: each a field of MethodOptions (whose default is
// the field's initialiser, lora/method_options.h) with its `train cl` flag, help text, the values it accepts and,
// where the built-in synthetic benchmark needs another value, that preset. `train cl --help`, the flags' parsing,
// run.json's options, `--method all|baselines|a,b` and the factory (make_method) all derive from these.
#pragma once
#include <string>
#include <vector>

#include "lora/cli_flags.h"
#include "lora/method_options.h"

// One option of a method: a `train cl` flag and the MethodOptions field it sets.
struct MethodOption {
    enum class Kind { real, count, choice, on_off };
    Kind kind;
    std::string flag, help;
    float MethodOptions::*real = nullptr;          // Kind::real: a finite number within range
    int MethodOptions::*count = nullptr;           // Kind::count: an integer >= low
    std::string MethodOptions::*choice = nullptr;  // Kind::choice: one of choices
    bool MethodOptions::*on_off = nullptr;         // Kind::on_off: "on" or "off"
    NumberRange range = NumberRange::non_negative();
    int low = 1;
    std::vector<std::string> choices;
    // The built-in synthetic benchmark's value, as a user would type it; "" when it takes the default. With a
    // preset the flag's default is "" (left out: the preset of the data) and its help names both values.
    std::string synthetic;

    std::string default_text() const;  // the field's default as --help shows it (0.5, abs, on ...)
    // Sets the field from a flag's text; fails naming the flag when the value is malformed or out of range.
    void read(const std::string& value, MethodOptions& options) const;
};

inline MethodOption real_option(std::string flag, float MethodOptions::*field, NumberRange range, std::string help,
                                std::string synthetic = "") {
    MethodOption o{};
    o.kind = MethodOption::Kind::real, o.flag = std::move(flag), o.help = std::move(help);
    o.real = field, o.range = range, o.synthetic = std::move(synthetic);
    return o;
}
inline MethodOption count_option(std::string flag, int MethodOptions::*field, int low, std::string help) {
    MethodOption o{};
    o.kind = MethodOption::Kind::count, o.flag = std::move(flag), o.help = std::move(help);
    o.count = field, o.low = low;
    return o;
}
inline MethodOption choice_option(std::string flag, std::string MethodOptions::*field,
                                  std::vector<std::string> choices, std::string help) {
    MethodOption o{};
    o.kind = MethodOption::Kind::choice, o.flag = std::move(flag), o.help = std::move(help);
    o.choice = field, o.choices = std::move(choices);
    return o;
}
inline MethodOption on_off_option(std::string flag, bool MethodOptions::*field, std::string help) {
    MethodOption o{};
    o.kind = MethodOption::Kind::on_off, o.flag = std::move(flag), o.help = std::move(help);
    o.on_off = field, o.choices = {"on", "off"};
    return o;
}

struct MethodInfo {
    std::string name;                   // `--method NAME`; the method's folder <out>/NAME
    bool baseline = false;              // in `--method baselines` (the default); every method is in `all`
    std::vector<MethodOption> options;  // its own `train cl` flags
};

// Every registered method, in registry order (lora/methods/registry.h): the order of `--method all`, of the method
// list in `train cl --help` and of the method options' flags.
const std::vector<const MethodInfo*>& method_infos();
// The options of every method, in that order.
std::vector<const MethodOption*> method_options();
// The names `--method` accepts, and "baselines" / "all" expand to.
std::vector<std::string> known_methods();
std::vector<std::string> baseline_methods();
// A `--method` value: all, baselines, or a comma list of known names, each once.
std::vector<std::string> parse_methods(const std::string& list);
// The method options with the built-in synthetic benchmark's presets (synthetic) or every default (real tasks).
MethodOptions method_presets(bool synthetic);
