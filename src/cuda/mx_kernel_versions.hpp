// Test and benchmark hooks: pick a numbered reorder+quantize kernel (internal; no CUDA headers).
// The GEMM and decode versions are chosen per call through cuda_mx.hpp; the quantize entry point
// has no version argument, so tests and the bench set a process-wide choice here.
#pragma once

namespace micromix::cuda {

// Highest reorder+quantize version; the selectable ones are 1, 3-9, 11 and 12 (v2 and v10, experiments,
// were removed; see mx_reorder_quantize.cu and bench/GPU_NOTES.md).
int reorder_quantize_versions();
// 0 (default): the library's choice for the shape; 1, 3-9, 11 or 12: that kernel where it applies (v3-v12
// need K <= 51200 and 8-byte aligned FP8 / 4-byte aligned FP4 and FP6 outputs, else v1 runs;
// v4-v12 with ties away run v3).
// Throws micromix::Error for other values. Not thread-safe: tests and bench only.
void set_reorder_quantize_version(int v);

}  // namespace micromix::cuda
