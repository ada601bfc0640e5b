// Include FIRST in every src/quant .cpp. ggml's reference quantizers are built without
// fused multiply-add contraction; GCC's default for GNU C++ (-ffp-contract=fast) would fuse
// expressions like `sum += w*l*x`, changing last bits of the scale search and so, now and
// then, which code a value gets. Turning contraction off for the whole translation unit
// keeps our blocks byte-identical to llama.cpp's (tests/quant/test_fixtures.cpp). It must
// come before any function definition so that all of them, inline helpers included, share
// the same options (GCC will not inline across differing optimize attributes).
#pragma once
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
