// What the CPU running us offers, asked at run time (the build's -march says what the compiler
// may assume everywhere; these are the extras used only behind a check).
#pragma once

namespace slm {

// AMX tiles with bfloat16 multiply (Sapphire Rapids and later), and the kernel's permission to
// use them (Linux grants it per process on request; the answer is asked once and kept).
bool cpu_has_amx_bf16();

}  // namespace slm
