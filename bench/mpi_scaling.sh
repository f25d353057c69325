#!/bin/sh
# Scaling of data-parallel training on this machine: one epoch of LeNet-5
# on Fashion-MNIST (60,000 images) with 1 and with 2 ranks, 1 thread each,
# the same global batch (64: 64 on one rank, 32 on each of two), so both
# do the same arithmetic and reach the same weights. Each configuration
# runs REPEATS times (default 3) and the fastest counts: other jobs on the
# machine only ever slow a run down. Prints the table and the speed-up
# (time with 1 rank / time with 2; the efficiency is half of it). "in
# allreduce" is the slowest rank's time inside the hooks: communication and
# waiting for the other rank.
#   sh bench/mpi_scaling.sh [MODEL [GLOBAL_BATCH]]     (or: make bench-mpi)
#   REPEATS=n, IMAGES=n (a prefix of the data set), DATA=dir,
#   MPIRUN_ARGS=... (more mpirun options)
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-$root/examples/lenet5.model}
batch=${2:-64}
repeats=${REPEATS:-3}
data=${DATA:-/usr/share/datasets/fashion-mnist}
bin=$root/build/bench/mpi_scaling
make -s -C "$root" build/bench/mpi_scaling
[ -d "$data" ] || { echo "mpi_scaling: no data set in $data (dataset-fashion-mnist)" >&2; exit 1; }
# One rank per core; a waiting rank yields its core (the machine may be
# shared: a rank that spins in the allreduce slows the one it waits for).
mpirun="mpirun --bind-to core --mca mpi_yield_when_idle 1 ${MPIRUN_ARGS:-}"
[ "$(id -u)" -eq 0 ] && mpirun="$mpirun --allow-run-as-root"

echo "Model $(basename "$model"), global batch $batch, 1 thread per rank, best of $repeats;"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
printf '%-6s %-10s %-10s %-16s %s\n' ranks seconds images/s "in allreduce" speed-up
t1=""
for ranks in 1 2; do
    best=""
    for _ in $(seq "$repeats"); do
        line=$($mpirun -np "$ranks" "$bin" "$data" "$model" "$batch" 1 "${IMAGES:-0}")
        best=$(printf '%s\n%s\n' "$best" "$line" | awk 'NF' | sort -k3 -g | head -n 1)
    done
    secs=$(echo "$best" | cut -d' ' -f3)
    [ -n "$t1" ] || t1=$secs
    printf '%-6s %-10s %-10s %-16s %s\n' "$ranks" "$secs" "$(echo "$best" | cut -d' ' -f4)" \
        "$(echo "$best" | cut -d' ' -f5)s" "$(awk -v a="$t1" -v b="$secs" 'BEGIN { printf "%.2fx", a / b }')"
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after the runs"
