// Included by exactly one source file of each executable (apps/mfsim/main.cpp, tests/test_util.cpp):
// under the sanitizer tier (scripts/sanitize.sh), LeakSanitizer's exit-time scan of thread stacks
// faults, now and then, on the coroutine stacks that Debian's uninstrumented SystemC leaves behind
// ("Tracer caught signal 11"), which turned clean runs into failures. These executables keep
// AddressSanitizer and UBSan without the leak scan (docs/reliability.md).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define MFSIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MFSIM_ASAN 1
#endif
#endif
#ifdef MFSIM_ASAN
extern "C" const char* __lsan_default_options() { return "detect_leaks=0"; }
#endif
