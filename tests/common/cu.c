#include "cu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cu_run(const char *suite_name, const cu_test *tests) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
    if (!suite) return 2;
    const char *only = getenv("HS_TEST_ONLY");
    for (const cu_test *t = tests; t->name; t++) {
        if (only && !strstr(t->name, only)) continue;
        if (!CU_add_test(suite, t->name, t->fn)) return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

#include <time.h>

uint64_t cu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cu_sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
