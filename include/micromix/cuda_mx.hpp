// GPU ops on mixed FP4 | FP6 | FP8 MX matrices (see mx_mixed.hpp): the fused reorder + quantize of
// activations, the mixed GEMM and the small-M decode path. No CUDA headers needed; streams are
// passed as void* (a cudaStream_t). All ops are asynchronous on their stream, without hidden syncs.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "micromix/mx_mixed.hpp"

namespace micromix::cuda {

// Device pointers of one mixed matrix (rows, cols), same layout as mx::MxMixedMatrix:
// codes[s] (rows, packed_row_bytes(format(s), count(s))), scales[s] (rows, count(s) / 32).
struct MxMixedDevice {
  int64_t rows = 0;
  mx::MixedSplit split;
  const uint8_t* codes[mx::kSegments] = {};
  const uint8_t* scales[mx::kSegments] = {};
};
struct MxMixedDeviceOut {
  int64_t rows = 0;
  mx::MixedSplit split;
  uint8_t* codes[mx::kSegments] = {};
  uint8_t* scales[mx::kSegments] = {};
};

// Decode-ready activations (1 <= M <= 16): the prepared decode GEMV (mx_mixed_gemv_prepared) reads
// its activations in its own layout (per K block and token the MMA operand in the lanes' order, FP4
// as exact int8 values with the block's starting sum, FP6 / FP8 as f16, the scales as floats), which
// it otherwise builds from the MX activations itself (a pre-pass kernel, or each CTA decoding the
// tokens). Given this buffer, the quantizers below write that layout along with their MX output and
// mx_mixed_gemv_prepared (version 22 and up) reads it directly: one kernel fewer per decode linear.
// The contents are internal and belong to one quantizer call (its M and split). Ignored for M > 16.
struct MxDecodeActs {
  void* data = nullptr;  // device memory, 16-byte aligned, at least mx_decode_acts_bytes(M, split) bytes
  size_t bytes = 0;
};
// The bytes of the layout for M rows of split (0 for M < 1 or M > 16).
size_t mx_decode_acts_bytes(int64_t M, const mx::MixedSplit& split);

// Reorder + quantize: x (M, K) bf16 bits row-major, perm (K) int32 on the device (permuted column
// j takes x[:, perm[j]]) -> out's segments. Bit-identical to mx::quantize_mixed on the float values
// of x. One pass: each row is read once and each code and scale written once.
// acts (optional, M <= 16): also write the decode-ready layout there (MxDecodeActs).
// NOTES: perm is not validated on the device (host code validates it once at load time).
void mx_reorder_quantize(const uint16_t* d_x, int64_t M, const int32_t* d_perm, const MxMixedDeviceOut& out,
                         mx::ScaleRule rule, mx::Rounding r, void* stream, const MxDecodeActs* acts = nullptr);

// ---- fused prologue + reorder + quantize (mx_fused_quantize.cu) ----------------------------------
// Both compute a bf16 row in FP32 arithmetic, round it to bf16 (round to nearest even; NaN stays
// NaN) and quantize that bf16 row exactly as mx_reorder_quantize would: the unfused pipeline stores
// bf16 activations, so the fused op quantizes exactly what the unfused one would have quantized,
// without writing or re-reading them. K = out.split.cols(), a multiple of 32, K <= 102400.
// The FP32 arithmetic is fixed (src/cuda/fused_prologue_math.hpp, bit-reproducible on the host):
//   RMSNorm: ss = sum of x^2 over the row by fmaf in a fixed order (256 per-thread partial sums
//     over 8-element chunks t, t + 256, ..., a warp xor-butterfly, then the 8 warp sums in order);
//     inv = 1 / sqrtf(ss / K + eps); y = bf16((x * inv) * w).
//   SwiGLU: y = bf16((g / (1 + e)) * u) with e = micromix's own FP32 exp(-g) (Cody-Waite + degree-7
//     polynomial, within ~2 ulp of exp; not CUDA's expf, so that host references can match).
// Each input element is read once from global memory. Same conventions as mx_reorder_quantize
// (device pointers, 16-byte aligned inputs, asynchronous on stream, perm not validated, optional acts).
enum class WeightType { bf16, f32 };
// x (M, K) bf16 row-major; weight (K) bf16 or f32 per wtype.
void mx_rmsnorm_reorder_quantize(const uint16_t* d_x, int64_t M, const void* d_weight, WeightType wtype, float eps,
                                 const int32_t* d_perm, const MxMixedDeviceOut& out, mx::ScaleRule rule, mx::Rounding r,
                                 void* stream, const MxDecodeActs* acts = nullptr);
// gate and up (M, K) bf16 with row stride ld elements (ld >= K, multiple of 8): two separate
// buffers (ld = K), or one (M, 2K) gate|up buffer (up = gate + K, ld = 2K).
void mx_swiglu_reorder_quantize(const uint16_t* d_gate, const uint16_t* d_up, int64_t ld, int64_t M,
                                const int32_t* d_perm, const MxMixedDeviceOut& out, mx::ScaleRule rule, mx::Rounding r,
                                void* stream, const MxDecodeActs* acts = nullptr);

enum class OutType { bf16, f32 };

// Mixed GEMM: y (M, N) = dequant(a) (M, K) . dequant(w) (N, K)^T with FP32 accumulation of all
// three segments in one launch, y written as bf16 (round to nearest even) or f32.
// a and w must share the split (the caller guarantees they share the permutation).
// version: 0 picks the library default for the shape (M <= 16: the decode path, mx_mixed_gemv;
// from 512 rows, and from 17 rows when N x K <= 2^25: v18, dequantize to BF16 + cuBLAS; otherwise
// 17..255 rows: v10 with split-K, v2 where the tiles fill the GPU, v12 at M <= 64 and K <= 8192;
// 256..511: v15); 1.. select a numbered GEMM kernel (see
// sm90_mx_mixed_gemm.cu). Numerics: every dequantized element is exact in bf16 unless its magnitude
// is below 2^-126 (scale codes near 0): v10 and up detect such tiles and compute them exactly in FP32
// on the CUDA cores; the older versions' tensor cores may flush those values to zero.
// v10 and up take stream-ordered workspace for their pre-passes / split-K partials (v14-v18: the
// activations as BF16, M x K x 2 bytes; v18 also at most 64 MiB of BF16 weights) from micromix's
// scratch pool (see mx_release_scratch).
void mx_mixed_gemm(const MxMixedDevice& a, const MxMixedDevice& w, void* d_y, OutType out, int version,
                   void* stream);
// Number of GEMM versions selectable by mx_mixed_gemm's version argument, and their names.
int mx_mixed_gemm_versions();
const char* mx_mixed_gemm_version_name(int version);

// Decode path for M <= 16 on row-major weights: streams w once; v1-v3 dequantize on the CUDA cores,
// v4.. run f16 tensor-core MMAs on unscaled element values with FP32 promotion per MX block (see
// mx_gemv_decode.cu, mx_gemv_decode_v4.cu). Same contract as mx_mixed_gemm. version: 0 the default
// (v8), 1.. a numbered kernel. Faster on most shapes: mx_mixed_gemv_prepared below.
void mx_mixed_gemv(const MxMixedDevice& a, const MxMixedDevice& w, void* d_y, OutType out, void* stream,
                   int version = 0);
int mx_mixed_gemv_versions();

// Decode path on weights prepared once (at load time) in mma fragment order: a warp reads each
// MX block of its 16-row group as one contiguous run straight into registers (mx_gemv_decode_prepared.cu;
// version 10: f16 MMAs on every block; 11: FP4 x FP4 blocks as exact int8 MMAs; 12: 11 launched as a
// programmatic dependent of its activation pre-pass; 13: 12 up to 16 rows, and above 16 rows
// mx_gemv_decode_rows.cu's kernel: 64 rows per launch pair, 32 tokens per CTA, FP4 blocks on bf16
// MMAs with both scales folded in where exact; 14: 13 with a compact one-token pre-pass
// at M = 1 where the fused kernel does not apply, and the rows kernel from 9 rows up on layers wide
// enough for 8 row groups per CTA);
// 128 rows of one block are one run too, which the prefill GEMM reads (mx_mixed_gemm_prepared below):
// one prepared copy serves every M.
// The prepared matrix has exactly the row-major one's arrays and sizes (allocate it the same way);
// N a multiple of 16. Then mx_mixed_gemv_prepared takes it in place of w (meant for M = 1..64; larger
// M runs 64 rows (v13) or 16 rows (v10-v12) per launch; same contract as mx_mixed_gemv). The environment
// variable MICROMIX_GEMV_RG (1, 2, 4 or 8; read once) overrides v13's row groups per CTA (benchmarks). The activations are decoded once per
// call into a stream-ordered workspace (a small kernel before the GEMV).
// (17, 19, 20: see mx_gemv_decode_prepared.cu.) Version 21 = v20 with the call's first kernel launched
// as a programmatic dependent of the stream's previous kernel (meant to be the quantizer of a: the quantizers above let dependents
// start at once): its CTAs start, prefetch weights into L2 and then wait (griddepcontrol.wait) for
// that kernel's completion and memory, so the weight stream overlaps the quantizer. Any previous
// kernel is waited for in full before a is read; nothing is written before that wait.
// Version 22 (the default) = v21, and where acts is given (1 <= M <= 16: the quantizer of a wrote it, MxDecodeActs)
// the GEMV reads it instead of decoding a: no pre-pass kernel, no per-CTA decoding; the GEMV itself is
// the quantizer's programmatic dependent where the quantizer's grid is small. Without acts, v22 computes
// what v21 computes (the same bits; its pre-pass writes the same layout the quantizers write). acts must
// hold what the quantizer wrote for this a (same rows, same split); that is not checked.
// Both asynchronous on stream.
void mx_prepare_gemv_weights(const MxMixedDevice& w, const MxMixedDeviceOut& prepared, void* stream);
void mx_mixed_gemv_prepared(const MxMixedDevice& a, const MxMixedDevice& w_prepared, void* d_y, OutType out,
                            void* stream, int version = 0, const MxDecodeActs* acts = nullptr);
// Any M on the same prepared weights (one resident copy for decode and prefill): M <= 64 the decode
// path above; larger M GEMM v18 where mx_mixed_gemm picks it (both operands dequantized to bounded
// BF16 scratch, cuBLAS BF16 GEMM with FP32 accumulation, exact fix-up for values below 2^-126),
// otherwise v15 reading the prepared layout directly. version: 0 that choice, 15 or 18 to force one (M > 16). Same contract as
// mx_mixed_gemm; asynchronous on stream.
void mx_mixed_gemm_prepared(const MxMixedDevice& a, const MxMixedDevice& w_prepared, void* d_y, OutType out,
                            void* stream, int version = 0);

// Workspace of every op (activation copies, split-K partials, v18's BF16 operands) comes from a
// stream-ordered memory pool per device owned by micromix, which keeps freed memory reserved for the
// next call (returning it at every synchronization and mapping it again cost ~25% of a GEMM v18 call
// on H100). The pool therefore holds the largest workspace used at once until this call gives its
// unused memory back to the driver (all devices; call it when no op is in flight or after them).
// The environment variable MICROMIX_SCRATCH_KEEP_MB (read when a device's pool is created) caps what
// the pool keeps across synchronizations (0: the CUDA default of keeping nothing).
void mx_release_scratch();

// ---- host conveniences (tests, tools): copy to the device, run, copy back; synchronous ----------
// y (M, N) as float (out = f32) or bf16 bits widened to float (out = bf16). kernel: 0 GEMM default,
// v >= 1 GEMM version v; -1 the decode path's default, -1 - v decode version v (-2: v1, -3: v2);
// kGemvPreparedKernel: mx_prepare_gemv_weights then mx_mixed_gemv_prepared; kGemmPreparedKernel:
// mx_prepare_gemv_weights then mx_mixed_gemm_prepared.
// kGemvPreparedV10Kernel .. V14, V17, V19 .. V21: the prepared decode path's numbered versions.
inline constexpr int kGemvPreparedKernel = -100;
inline constexpr int kGemmPreparedKernel = -101;
inline constexpr int kGemmPreparedV18Kernel = -118;  // mx_mixed_gemm_prepared version 18
inline constexpr int kGemvPreparedV10Kernel = -110;
inline constexpr int kGemvPreparedV11Kernel = -111;
inline constexpr int kGemvPreparedV12Kernel = -112;
inline constexpr int kGemvPreparedV13Kernel = -113;
inline constexpr int kGemvPreparedV14Kernel = -114;
inline constexpr int kGemvPreparedV17Kernel = -117;  // v14 with fewer warps per row group at M = 1
inline constexpr int kGemvPreparedV19Kernel = -119;  // v17 with the CTA decoding M = 2..4 tokens itself
inline constexpr int kGemvPreparedV20Kernel = -120;  // v19 with the two-tile GEMV's shape by grid at M = 9..16
inline constexpr int kGemvPreparedV21Kernel = -121;  // v20 launched as a programmatic dependent of the quantizer
inline constexpr int kGemvPreparedV22Kernel = -122;  // v21 reading the quantizer's decode-ready activations
// kGemvPreparedV10Kernel .. V22: a numbered prepared decode version (its number: -kernel - 100).
constexpr bool is_gemv_prepared_version_kernel(int kernel) {
  return (kernel >= kGemvPreparedV14Kernel && kernel <= kGemvPreparedV10Kernel) || kernel == kGemvPreparedV17Kernel ||
         (kernel >= kGemvPreparedV22Kernel && kernel <= kGemvPreparedV19Kernel);
}
// a_code_offset: a's codes of every segment start that many bytes (0..15) past a 16-byte aligned
// address (tests: every op must reject such operands with an error).
std::vector<float> mx_mixed_gemm_host(const mx::MxMixedMatrix& a, const mx::MxMixedMatrix& w, OutType out,
                                      int kernel, int a_code_offset = 0);
// x (M, K) as bf16 bits -> mixed matrix with the same split and perm as `like` describes.
mx::MxMixedMatrix mx_reorder_quantize_host(std::span<const uint16_t> x, int64_t M, int64_t K,
                                           std::span<const int32_t> perm, const mx::MixedSplit& split,
                                           mx::ScaleRule rule, mx::Rounding r);

// The decode linear as an engine runs it, on one stream without a host sync between the ops: the
// quantizer (producer none: mx_reorder_quantize of x (M, K); rmsnorm: mx_rmsnorm_reorder_quantize of
// x with norm_weight (K bf16 values); swiglu: mx_swiglu_reorder_quantize of x (M, 2K), rows gate | up),
// then mx_prepare_gemv_weights' layout of w read by mx_mixed_gemv_prepared (version: 0 the default).
// decode_acts: the quantizer also writes MxDecodeActs (poisoned first) and the GEMV gets them.
// Returns the quantized activations and y (M, N) as mx_mixed_gemm_host does.
enum class DecodeProducer { none, rmsnorm, swiglu };
struct DecodeLinearResult {
  mx::MxMixedMatrix xq;
  std::vector<float> y;
};
DecodeLinearResult mx_quantize_gemv_host(std::span<const uint16_t> x, int64_t M, DecodeProducer producer,
                                         std::span<const uint16_t> norm_weight, float eps, const mx::MxMixedMatrix& w,
                                         OutType out, int version, bool decode_acts = false);

// Fused ops on host data (poisoned device outputs). weight: K bf16 or f32 values as bytes.
mx::MxMixedMatrix mx_rmsnorm_reorder_quantize_host(std::span<const uint16_t> x, int64_t M, int64_t K,
                                                   std::span<const uint8_t> weight, WeightType wtype, float eps,
                                                   std::span<const int32_t> perm, const mx::MixedSplit& split,
                                                   mx::ScaleRule rule, mx::Rounding r);
// gate_up: packed = true: (M, 2K), row i = gate row | up row; false: gate (M, K) then up (M, K).
mx::MxMixedMatrix mx_swiglu_reorder_quantize_host(std::span<const uint16_t> gate_up, int64_t M, int64_t K, bool packed,
                                                  std::span<const int32_t> perm, const mx::MixedSplit& split,
                                                  mx::ScaleRule rule, mx::Rounding r);

}  // namespace micromix::cuda
