// `train cl`'s flags (train.cu runs the command): declared with their defaults and help, and read into
// ContinualOptions. The method options' flags come from the methods' own tables (lora/method_info.h).
#pragma once
#include "lora/cli_flags.h"
#include "lora/continual.h"

// Every flag of `train cl`, with its usage text for --help.
Flags cl_flags();
// The options the parsed flags give: flags left out take the preset of the data (the built-in synthetic benchmark
// or real tasks: continual_preset). Sets --threads. Fails naming a flag whose value is malformed or out of range.
ContinualOptions read_cl_flags(Flags& flags);
