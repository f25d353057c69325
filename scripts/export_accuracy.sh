#!/bin/sh
# The accuracy of the exported code's own exp and the activations built on
# it (src/export/runtime.c), against glibc's libm: the runtime's text is
# compiled with a driver that samples x in [-87, 88] (every float near 0,
# then steps of about 1e-6 relative) and prints the largest error in ulp
# and relative to the value. docs/DEPLOY.md quotes its output.
#
#   sh scripts/export_accuracy.sh
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$root/src/export/runtime.c" "$tmp/acc.c" <<'PY' || exit 1
import re, sys
s = open(sys.argv[1]).read()
def piece(name):
    body = re.search(r'static const char ' + name + r'\[\] =\n(.*?);\n', s, re.S).group(1)
    return eval('(' + body + ')')
driver = r'''
static double ulps(float a, float b)
{
    if (a == b) return 0;
    return fabsf(a - b) / (nextafterf(fabsf(b), INFINITY) - fabsf(b));
}
int main(void)
{
    const char *name[5] = {"exp", "tanh", "sigmoid", "expm1", "elu"};
    double worst[5] = {0}, rel[5] = {0};
    for (float x = -87.0f; x < 88.0f; x = nextafterf(x, 1e9f)) {
        float got[5] = {k_exp(x), k_act1(x, 3), k_act1(x, 2), k_expm1(x), k_act1(x, 9)};
        float want[5] = {expf(x), tanhf(x), 1.0f / (1.0f + expf(-x)), expm1f(x),
                         x > 0 ? x : expm1f(x)};
        for (int i = 0; i < 5; i++) {
            double u = ulps(got[i], want[i]);
            double r = want[i] != 0 ? fabs((double)got[i] - want[i]) / fabs((double)want[i]) : 0;
            worst[i] = u > worst[i] ? u : worst[i];
            rel[i] = r > rel[i] ? r : rel[i];
        }
        if (fabsf(x) > 1e-3f)
            x += fabsf(x) * 1e-6f;
    }
    for (int i = 0; i < 5; i++)
        printf("%-8s largest error %.0f ulp, %.3g relative\n", name[i], worst[i], rel[i]);
    return 0;
}
'''
open(sys.argv[2], 'w').write('#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n' +
                             piece('piece_exp') + piece('piece_act') + driver)
PY
gcc -std=c99 -O2 "$tmp/acc.c" -o "$tmp/acc" -lm && "$tmp/acc"
