/* tests/common/tsan_grpc.h - ThreadSanitizer suppressions for tests that run gRPC threads.
 *
 * Debian's libgrpc, libgpr and abseil are not built with -fsanitize=thread, so TSan cannot
 * see the synchronization inside them (absl::Mutex waits on futexes and atomics of its own):
 * every hand-off between two gRPC threads looks like a race, including hand-offs of memory our
 * code wrote before giving it to gRPC (a frame's bytes read by sendmsg on another CQ's thread)
 * or gRPC wrote before giving it to us (status details freed by the CQ thread). These entries
 * hide only reports with a frame inside those libraries; a race between two stacks of our own
 * code is still reported. Only a TSan build calls the function.
 *
 * Use: HS_TSAN_GRPC_SUPPRESSIONS once at file scope in the test's main file. (A definition in
 * a static library would not be linked: the runtime's reference to it is weak.)
 */
#ifndef HS_TESTS_TSAN_GRPC_H
#define HS_TESTS_TSAN_GRPC_H

#define HS_TSAN_GRPC_SUPPRESSIONS                                                           \
    const char *__tsan_default_suppressions(void);                                         \
    const char *__tsan_default_suppressions(void) {                                        \
        return "race:libgrpc.so\n"                                                         \
               "race:libgpr.so\n"                                                          \
               "race:libabsl_\n"                                                           \
               "called_from_lib:libgrpc.so\n"                                              \
               "called_from_lib:libgpr.so\n";                                              \
    }

#endif
