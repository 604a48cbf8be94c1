// The decode-ready activation layout (MxDecodeActs, internal): where the quantizers write it and the
// prepared decode GEMV reads it (mx_gemv_decode_prepared.cu, whose pre-pass kernels build the same
// layout from MX activations).
//
// Per K block kb (the three segments' blocks in K order) `slots` token slots: 1 at M = 1 (the
// one-token path's compact layout), 8 NT at M = 2..16 (token tiles, NT = 1 up to 8 rows, 2 above).
// b[(kb * slots + t) * 4 + q]: quarter q (elements 8q .. 8q + 7 in the MMA's permuted K order) of token
// t's block as 16 bytes. FP6 / FP8 blocks: 4 f16x2 pairs (FP6 times 2^-12 / 2^-6). FP4 blocks: 8 signed
// bytes 2v in the low half, and the integer MMA's starting value -12 sum(2a) of the block enters too:
//   tiles (the GEMV's kSrcTilesSC): the high half is zero; s[2 (kb * slots + t)] and + 1 are the token's
//     scale (FP4: times 1/4, (2a)(2w) = 4aw) and start value (int bits; 0 for FP6 / FP8 blocks);
//   compact (M = 1): the high half holds the scale (times 1/4) and the start value; s[kb] the scale.
// Every slot is written whole by the CTA that quantized its token. (v20 / v21's tiles, kSrcTiles, keep
// the start values of tokens 8 (t / 8) + 2q and + 1 in the slot's high half and the scales alone in s:
// written by the quantizer, those high halves came from the CTA of another token pair, scattered 8-byte
// stores that cost it ~1.3 us at M >= 2; session 15.) Slots of tokens past M may hold anything: each
// token is one MMA column, and columns do not mix.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "micromix/cuda_mx.hpp"

namespace micromix::cuda {

struct DecodeActsView {
  uint4* b = nullptr;
  float* s = nullptr;
  int slots = 0;  // 0: no layout requested
  int nkb = 0;
};

// Token slots per K block for M rows (0 where the layout does not exist).
constexpr int decode_act_slots(int64_t M) { return M == 1 ? 1 : M >= 2 && M <= 8 ? 8 : M > 8 && M <= 16 ? 16 : 0; }

// The view of acts for an M-row matrix of split (empty when acts is null or M is outside 1..16);
// refuses a buffer that is too small or misaligned, naming op.
DecodeActsView decode_acts_view(const MxDecodeActs* acts, int64_t M, const mx::MixedSplit& split, const char* op);

// The layout from quantized activations a (a's rows = M), by the GEMV's own pre-pass kernels: for the
// quantizer paths that do not write it themselves. Asynchronous on stream; ordinary launches.
void write_decode_acts(const MxMixedDeviceOut& a, const DecodeActsView& v, cudaStream_t stream);

// CTAs of the default quantizer's grid for M rows of K columns (v12 / v13; mx_reorder_quantize_v3.cu):
// the decode GEMV starts early behind the quantizer only where that grid has at most
// kEarlyGemvMaxQuantizerCtas CTAs (gemv_shape_policy.hpp; mx_gemv_decode_prepared.cu, acts_chain).
int64_t quantizer_ctas(int64_t M, int64_t K);

}  // namespace micromix::cuda
