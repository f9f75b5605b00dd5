#include "testutil.h"

int tu_passed, tu_failed;

int tu_finish(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, tu_passed, tu_failed);
    return tu_failed == 0 && tu_passed > 0 ? 0 : 1;
}
