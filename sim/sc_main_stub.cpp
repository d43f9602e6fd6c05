// libsystemc.so defines main() and needs an sc_main; mfsim has its own main() (and the tests
// Catch2's), so this is never called. It lives in its own object, which every program linking
// mfsim_sim pulls in (sim/CMakeLists.txt: --undefined=sc_main), whether or not it simulates.
extern "C" int sc_main(int, char*[]) { return 0; }
