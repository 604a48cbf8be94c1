#!/usr/bin/env bash
# ncu on the prepared decode path at M = 1 (H100 session 6): the fused 16-warp GEMV of o, the fused
# 8-warp GEMV of qkv and the pre-pass GEMV of gate_up, on the bench's third mix (70/20/10). Under ncu
# each bench timer launches its kernel 5 times (3 warm-up, 1 calibration, 1 timed: --reps 1), two
# timers (v11, v12) per mix, so --launch-skip 20 lands on the 70/20/10 mix; DRAM bytes confirm it
# (o: ~10.6 MB for 70/20/10 against 8.9 MB for all-MXFP4). Output: $OUT/ncu_s6.txt
source "$(dirname "$0")/device_env.sh"
S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats --section InstructionStats"
run() {  # layer kernel-regex
  echo "=== $1 $2" >> "$OUT/ncu_s6.txt"
  timeout 150 ncu $S --kernel-name-base mangled -k regex:$2 --launch-skip ${SKIP:-20} --launch-count 1 \
    $D/bench_gemm --kernels -1 --reps 1 --m 1 --only $1 >> "$OUT/ncu_s6.txt" 2>&1
}
run o gemv_fragILi1ELb1ELb0ELb1ELi16
run qkv gemv_fragILi1ELb1ELb0ELb1ELi8
run gate_up gemv_fragILi1ELb1ELb0ELb0ELi8
grep -E "===|Duration|DRAM Throughput|dram__bytes|Memory Throughput|Achieved Occupancy|Registers Per|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Executed Ipc|Grid Size|L2 Hit|Stall|Block Limit" "$OUT/ncu_s6.txt" | head -90
