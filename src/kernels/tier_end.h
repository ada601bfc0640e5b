// Closes the tier section opened by tier_begin.h.
#if defined(__clang__)
#if SLM_TIER != 0
#pragma clang attribute pop
#endif
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
