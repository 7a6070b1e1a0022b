// The methods' names and options (lora/method_info.h), from the registry (lora/methods/registry.h).
#include "lora/method_info.h"

#include <algorithm>
#include <sstream>

#include "lora/methods/registry.h"

std::string MethodOption::default_text() const {
    const MethodOptions defaults;
    switch (kind) {
        case Kind::real: return number_text(defaults.*real);
        case Kind::count: return std::to_string(defaults.*count);
        case Kind::choice: return defaults.*choice;
        case Kind::on_off: return defaults.*on_off ? "on" : "off";
    }
    return "";
}

void MethodOption::read(const std::string& value, MethodOptions& options) const {
    switch (kind) {
        case Kind::real: options.*real = parse_real(flag, value, range); break;
        case Kind::count: options.*count = int(parse_integer(flag, value, low, INT_MAX)); break;
        case Kind::choice: options.*choice = parse_choice(flag, value, choices); break;
        case Kind::on_off: options.*on_off = parse_choice(flag, value, choices) == "on"; break;
    }
}

const std::vector<const MethodInfo*>& method_infos() {
    static const std::vector<const MethodInfo*> infos = RegisteredMethods::infos();
    return infos;
}

std::vector<const MethodOption*> method_options() {
    std::vector<const MethodOption*> options;
    for (const MethodInfo* info : method_infos())
        for (const MethodOption& option : info->options) options.push_back(&option);
    return options;
}

std::vector<std::string> known_methods() {
    std::vector<std::string> names;
    for (const MethodInfo* info : method_infos()) names.push_back(info->name);
    return names;
}

std::vector<std::string> baseline_methods() {
    std::vector<std::string> names;
    for (const MethodInfo* info : method_infos())
        if (info->baseline) names.push_back(info->name);
    return names;
}

std::vector<std::string> parse_methods(const std::string& list) {
    if (list == "all") return known_methods();
    if (list == "baselines") return baseline_methods();
    const std::vector<std::string> known = known_methods();
    std::vector<std::string> methods;
    std::string item;
    std::stringstream items(list);
    while (std::getline(items, item, ',')) {
        if (std::find(known.begin(), known.end(), item) == known.end()) {
            std::string names;
            for (const std::string& k : known) names += " " + k;
            fail("unknown method '" + item + "' (known:" + names + ", all)");
        }
        if (std::find(methods.begin(), methods.end(), item) != methods.end())
            fail("--method: '" + item + "' is listed twice (each method writes <out>/" + item + ")");
        methods.push_back(item);
    }
    if (methods.empty()) fail("no method given");
    return methods;
}

MethodOptions method_presets(bool synthetic) {
    MethodOptions options;
    if (synthetic)
        for (const MethodOption* option : method_options())
            if (!option->synthetic.empty()) option->read(option->synthetic, options);
    return options;
}
