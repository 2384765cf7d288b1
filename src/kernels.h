// Numeric kernels of the Dual Memory step: dot products against stored
// vectors in float32, float16 or int8, softmax, entropy and L2 normalisation.
//
// One of three code paths is compiled in: WASM SIMD128 (__wasm_simd128__),
// x86 AVX2 with FMA (__AVX2__ and __FMA__), or portable scalar code. All three
// accumulate in float, so results differ between paths only by rounding.
#ifndef DUALMEM_KERNELS_H_
#define DUALMEM_KERNELS_H_

#include <cstddef>
#include <cstdint>

namespace dualmem {

// Element type of stored memory vectors. Values are stable: the bindings
// pass them as integers.
enum class Precision : uint8_t { kFloat32 = 0, kFloat16 = 1, kInt8 = 2 };

// Name of a precision for messages, e.g. "float16".
const char* PrecisionName(Precision precision);
// Bytes per stored element: 4, 2 or 1.
size_t PrecisionBytes(Precision precision);
// Name of the compiled code path: "wasm-simd128", "avx2" or "scalar".
const char* KernelPathName();

// IEEE 754 binary16 conversion. FloatToHalf rounds to nearest, ties to even,
// and maps overflow to infinity. HalfToFloat is exact.
uint16_t FloatToHalf(float value);
float HalfToFloat(uint16_t bits);

// Stores `count` floats in `precision` at `out` (count * PrecisionBytes
// bytes). For int8 the scale is max|value| / 127 (0 for an all-zero vector)
// and value ~= scale * stored; other precisions set `*scale` to 1.
void EncodeVector(const float* values, size_t count, Precision precision,
                  void* out, float* scale);
// Expands a stored vector back to floats (the dequantized vector).
void DecodeVector(const void* stored, size_t count, Precision precision,
                  float scale, float* out);

// Returns a·b over `count` floats.
float Dot(const float* a, const float* b, size_t count);

// Computes out[i] = query · vector_i for `num_vectors` stored vectors of
// `dim` elements each, laid out back to back at `block`. `scales` contains one
// scale per vector for int8 and is unused (may be null) otherwise. Each
// stored vector is read exactly once, without decompressing it to memory.
// For int8 the query is rounded to int16 levels (error at most 2^-16 of its
// largest element per element) so that the products are integer.
void DotBlock(const float* query, const void* block, Precision precision,
              const float* scales, size_t num_vectors, size_t dim, float* out);

// Rounds a query to int16 levels for DotBlockInt8 and returns the scale,
// query ~= scale * levels (0 for an all-zero query).
float QuantizeQueryInt16(const float* query, size_t count, int16_t* levels);
// DotBlock for int8 vectors with a query quantized once by
// QuantizeQueryInt16, for callers that reuse one query over many blocks.
void DotBlockInt8(const int16_t* levels, float level_scale, const int8_t* block,
                  const float* scales, size_t num_vectors, size_t dim, float* out);

// Returns wᵀMw for a symmetric n × n matrix M stored row-major with `stride`
// floats from one row to the next, reading only the diagonal and the part
// right of it. Rows whose weight is 0 are skipped. Products off the diagonal
// are summed in float, the diagonal terms in double.
double SymmetricQuadraticForm(const float* matrix, size_t stride, const float* weights,
                              size_t n);

// Writes the readout weights exp(beta (s_i - 1)) for similarities s_i. The
// SIMD paths use a polynomial exp with a relative error below 1e-6.
void ReadoutWeights(const float* similarities, size_t count, float beta,
                    float* weights);

// Writes softmax(scale * logits) to `out`. Computed in double so that the
// entropies of very confident distributions, which differ in the 1e-10
// range, keep their order.
void ScaledSoftmax(const float* logits, size_t count, double scale,
                   double* out);

// Shannon entropy in nats, H(p) = -sum p ln(p + 1e-8). The 1e-8 keeps ln
// finite at p = 0, so a one-hot distribution has entropy -1e-8, not 0.
double Entropy(const double* probabilities, size_t count);

// Returns sum of squares of `values`, accumulated in double.
double SumOfSquares(const float* values, size_t count);

// Writes values / ||values|| to `out` (which may equal `values`). Returns
// false, leaving `out` unspecified, when the norm is zero or not finite.
bool NormalizeL2(const float* values, size_t count, float* out);

}  // namespace dualmem

#endif  // DUALMEM_KERNELS_H_
