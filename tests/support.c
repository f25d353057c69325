#include "test.h"

int test_passed, test_failed;

int test_close(const char *what, const float *a, const float *b, long n, double atol,
               double rtol)
{
    long worst = -1;
    double worst_excess = 0, worst_diff = 0;
    for (long i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        double excess = diff - (atol + rtol * fabs((double)b[i]));
        if (!(excess <= 0) && (worst < 0 || !(excess <= worst_excess))) {
            worst = i;
            worst_excess = excess;
            worst_diff = diff;
        }
    }
    if (worst < 0) {
        test_passed++;
        return 1;
    }
    test_failed++;
    fprintf(stderr, "%s: element %ld differs: got %.9g, expected %.9g (|diff| %.3g)\n", what,
            worst, (double)a[worst], (double)b[worst], worst_diff);
    return 0;
}

int test_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, test_passed, test_failed);
    return test_failed ? 1 : 0;
}
