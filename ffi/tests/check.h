/*
 * The checks shared by libirm's C test programs (hostile.c, lease.c,
 * explicit.c): each counts what passed and failed, names a failure by line
 * with the status it got (and the library's last error message), and ends
 * with check_report(). Checks run on the main thread only.
 */
#ifndef IRM_TESTS_CHECK_H
#define IRM_TESTS_CHECK_H

#include <stdio.h>

#include "irm.h"

static int passed, failed;

#define EXPECT(expr, want)                                                   \
  do {                                                                       \
    irm_status got_ = (expr);                                                \
    if (got_ == (want)) {                                                    \
      passed++;                                                              \
    } else {                                                                 \
      char detail_[512];                                                     \
      size_t n_ = 0;                                                         \
      irm_last_error_message(detail_, sizeof detail_, &n_);                  \
      failed++;                                                              \
      fprintf(stderr, "line %d: %s gave %d, expected %d (%s): %s\n",          \
              __LINE__, #expr, (int)got_, (int)(want), #want, detail_);      \
    }                                                                        \
  } while (0)

#define TRUE(cond)                                                   \
  do {                                                               \
    if (cond) {                                                      \
      passed++;                                                      \
    } else {                                                         \
      failed++;                                                      \
      fprintf(stderr, "line %d: not true: %s\n", __LINE__, #cond);   \
    }                                                                \
  } while (0)

/* Prints "N passed, M failed"; the program's exit status: 1 if any failed. */
static int check_report(void) {
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

#endif
