/* tests/common/cu.h - a thin CUnit runner: each test file lists its tests and calls cu_run.
 *
 *   static const cu_test tests[] = {{"quorum rule", test_quorum}, {NULL, NULL}};
 *   int main(void) { return cu_run("types", tests); }
 *
 * Exits non-zero when any assertion failed, so ctest sees the failure.
 */
#ifndef HS_TEST_CU_H
#define HS_TEST_CU_H

#include <stdint.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

typedef struct cu_test {
    const char *name;
    void (*fn)(void);
} cu_test;

/* Runs tests (up to the {NULL, NULL} entry) as one suite; with HS_TEST_ONLY=<substring> in
 * the environment only the tests whose names contain it (a debugging aid). 0 when all pass. */
int cu_run(const char *suite, const cu_test *tests);

/* Monotonic milliseconds, for awaiting conditions with a timeout (never for pacing a test). */

uint64_t cu_now_ms(void);
void cu_sleep_ms(unsigned ms);

/* Polls `cond` every 10 ms until it holds or timeout_ms passes; evaluates to whether it held.
 * Tests await conditions; they never sleep for a fixed time and hope. */
#define CU_AWAIT(cond, timeout_ms)                                                            \
    ({                                                                                        \
        uint64_t cu_deadline_ = cu_now_ms() + (timeout_ms);                                   \
        int cu_ok_ = 0;                                                                       \
        for (;;) {                                                                            \
            if (cond) { cu_ok_ = 1; break; }                                                  \
            if (cu_now_ms() >= cu_deadline_) break;                                           \
            cu_sleep_ms(10);                                                                  \
        }                                                                                     \
        cu_ok_;                                                                               \
    })

#endif
