#!/usr/bin/python3
"""Derives the matrices of Winograd's F(2, 5) that src/kernels/winograd.c
writes out by hand, and checks them.

Aᵀ and G follow from the interpolation points (0, 1, -1, 2, -2 and
infinity), Bᵀ is solved for so that Aᵀ [(G g) ⊙ (Bᵀ d)] is the correlation
y[j] = sum_k g[k] d[j + k] for every g and d, exactly, in rationals
(sympy). Then the 2-D form Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A is checked against
the 5x5 correlation of a random 6x6 patch. Run: /usr/bin/python3
scripts/winograd_matrices.py (Debian's python3-sympy); it prints the three
matrices and exits 1 if a check fails.
"""
import random
import sys

import sympy as sp

M, R = 2, 5
POINTS = [0, 1, -1, 2, -2]
ALPHA = len(POINTS) + 1


def matrices():
    AT = sp.zeros(M, ALPHA)
    G = sp.zeros(ALPHA, R)
    for i, p in enumerate(POINTS):
        f = sp.prod([p - q for q in POINTS if q != p])
        for j in range(M):
            AT[j, i] = sp.Integer(p) ** j
        for k in range(R):
            G[i, k] = sp.Integer(p) ** k / f
    AT[M - 1, ALPHA - 1] = 1  # the point at infinity
    G[ALPHA - 1, R - 1] = 1
    BT = sp.Matrix(ALPHA, ALPHA, lambda i, l: sp.Symbol("b_%d_%d" % (i, l)))
    equations = [sum(AT[j, i] * G[i, k] * BT[i, l] for i in range(ALPHA)) - (1 if l == j + k else 0)
                 for j in range(M) for k in range(R) for l in range(ALPHA)]
    solution = sp.solve(equations, list(BT), dict=True)
    if not solution:
        sys.exit("no Bᵀ for these points")
    BT = BT.subs(solution[0])
    if BT.free_symbols:
        sys.exit("Bᵀ is not unique")
    return AT, G, BT


def check_2d(AT, G, BT):
    rnd = random.Random(5)
    g = sp.Matrix(R, R, lambda i, j: sp.Integer(rnd.randint(-9, 9)))
    d = sp.Matrix(ALPHA, ALPHA, lambda i, j: sp.Integer(rnd.randint(-9, 9)))
    U = G * g * G.T
    V = BT * d * BT.T
    Y = AT * U.multiply_elementwise(V) * AT.T
    want = sp.Matrix(M, M, lambda oy, ox: sum(g[ky, kx] * d[oy + ky, ox + kx]
                                              for ky in range(R) for kx in range(R)))
    return Y == want


def main():
    AT, G, BT = matrices()
    for name, m in (("Bᵀ", BT), ("G", G), ("Aᵀ", AT)):
        print(name)
        sp.pprint(m)
    ok = check_2d(AT, G, BT)
    print("2-D check:", "exact" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
