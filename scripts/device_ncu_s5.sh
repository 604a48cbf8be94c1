#!/usr/bin/env bash
# ncu on the prepared decode path (v11, M = 1, all-MXFP4 = the bench's first mix): the GEMV kernel and
# the activation pre-pass for o and gate_up. Output: $OUT/ncu_s5.txt
source "$(dirname "$0")/device_env.sh"
S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats"
for layer in o gate_up; do
  for k in gemv_fragILi1ELb1ELb0 prepare_activationsILi1ELb1; do
    echo "=== $layer $k" >> "$OUT/ncu_s5.txt"
    timeout 120 ncu $S --kernel-name-base mangled -k regex:$k -c 1 $D/bench_gemm --kernels -1 --reps 1 --m 1 --only $layer >> "$OUT/ncu_s5.txt" 2>&1
  done
done
grep -E "===|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Block Limit|Theoretical Occ|Grid Size|L2 Hit|Stall" "$OUT/ncu_s5.txt" | head -80
