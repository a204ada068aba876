// sums[g] = sum_r |A[r, :] . B[g, :]|  for A (R, J) float32, B (G, J) float32, J <= 8.
//
// The blend kernel's hot loop (MAE/MAPE, row weights folded into A), as an XLA
// FFI custom call for CPU devices: compiled on first use by
// jaxexp/blending/native.py. Weightings go 32 to a block (32 float32 lanes:
// two AVX-512 or four AVX2 registers per accumulator), each weight column of a
// block stays in registers, and each row costs J multiply-adds, an abs and an
// add per lane with nothing written to memory. Rows are taken in tiles of
// TILE (<= 256 KiB of A, so every weighting block re-reads them from L2, not
// memory), summed in float32 within runs of ROWS, then in float64 (float32
// alone loses ~1e-5 relative over 1e6 rows).
#include <cmath>
#include <cstdint>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t LANES = 32;
constexpr int64_t ROWS = 256;
constexpr int64_t TILE = 8192;

template <int J>
void AbsSumBlock(const float* a, int64_t rows, const float* w, double* total) {
  // w: (J, LANES) weights of one block of weightings.
  for (int64_t r0 = 0; r0 < rows; r0 += ROWS) {
    const int64_t r1 = r0 + ROWS < rows ? r0 + ROWS : rows;
    float acc[LANES] = {0.0f};
    for (int64_t r = r0; r < r1; ++r) {
      const float* ar = a + r * J;
      float e[LANES];
      for (int64_t l = 0; l < LANES; ++l) e[l] = ar[0] * w[l];
      for (int j = 1; j < J; ++j) {
        const float aj = ar[j];
        for (int64_t l = 0; l < LANES; ++l) e[l] += aj * w[j * LANES + l];
      }
      for (int64_t l = 0; l < LANES; ++l) acc[l] += std::fabs(e[l]);
    }
    for (int64_t l = 0; l < LANES; ++l) total[l] += acc[l];
  }
}

template <int J>
void AbsSum(const float* a, int64_t rows, const float* b, int64_t g, float* out) {
  const int64_t blocks = (g + LANES - 1) / LANES;
  std::vector<float> w(blocks * J * LANES, 0.0f);  // (blocks, J, LANES), zero-padded
  for (int64_t i = 0; i < g; ++i)
    for (int j = 0; j < J; ++j) w[((i / LANES) * J + j) * LANES + i % LANES] = b[i * J + j];
  std::vector<double> total(blocks * LANES, 0.0);
  for (int64_t r0 = 0; r0 < rows; r0 += TILE) {
    const int64_t n = rows - r0 < TILE ? rows - r0 : TILE;
    for (int64_t k = 0; k < blocks; ++k) AbsSumBlock<J>(a + r0 * J, n, &w[k * J * LANES], &total[k * LANES]);
  }
  for (int64_t i = 0; i < g; ++i) out[i] = static_cast<float>(total[i]);
}

ffi::Error AbsSumImpl(ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b, ffi::ResultBuffer<ffi::F32> out) {
  auto ad = a.dimensions(), bd = b.dimensions();
  if (ad.size() != 2 || bd.size() != 2 || ad[1] != bd[1] || out->element_count() != bd[0])
    return ffi::Error::InvalidArgument("jaxexp_abs_sum: expects A (R, J), B (G, J) and sums (G,)");
  const int64_t rows = ad[0], g = bd[0];
  const float *pa = a.typed_data(), *pb = b.typed_data();
  float* po = out->typed_data();
  switch (ad[1]) {
    case 1: AbsSum<1>(pa, rows, pb, g, po); break;
    case 2: AbsSum<2>(pa, rows, pb, g, po); break;
    case 3: AbsSum<3>(pa, rows, pb, g, po); break;
    case 4: AbsSum<4>(pa, rows, pb, g, po); break;
    case 5: AbsSum<5>(pa, rows, pb, g, po); break;
    case 6: AbsSum<6>(pa, rows, pb, g, po); break;
    case 7: AbsSum<7>(pa, rows, pb, g, po); break;
    case 8: AbsSum<8>(pa, rows, pb, g, po); break;
    default: return ffi::Error::InvalidArgument("jaxexp_abs_sum: J must be 1..8");
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxexpAbsSum, AbsSumImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
