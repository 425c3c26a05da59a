/* Minimal unit-test helpers: each test file is one ctest executable; a failed CHECK prints
 * file:line and the expression, the run goes on, and main returns non-zero at the end. */
#ifndef GW_TEST_CHECK_H
#define GW_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(expr)                                                                                          \
    do {                                                                                                     \
        check_count++;                                                                                       \
        if (!(expr)) {                                                                                       \
            check_failures++;                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);                         \
        }                                                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                                   \
    do {                                                                                                     \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                      \
        check_count++;                                                                                       \
        if (check_a_ != check_b_) {                                                                          \
            check_failures++;                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b,     \
                    check_a_, check_b_);                                                                     \
        }                                                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                                      \
    do {                                                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                                                         \
        check_count++;                                                                                       \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                                     \
            check_failures++;                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s == \"%s\" (got \"%s\")\n", __FILE__, __LINE__, #a,       \
                    check_b_ ? check_b_ : "(null)", check_a_ ? check_a_ : "(null)");                         \
        }                                                                                                    \
    } while (0)

/** Prints the summary line and returns the process exit code. */
static inline int check_report(const char *suite)
{
    printf("%s: %d checks, %d failed\n", suite, check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
