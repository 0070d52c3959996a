// A naive kernel with the SPLAT fused-forward ABI (docs/design.md section 3), used by
// tests/gpu/test_gpu_runtime.py to check the runtime (PTX loading, parameter packing, grid,
// tables, streams, the torch/JAX entry points) independently of the MLIR-generated kernel.
//
// Parameters are MLIR's memref descriptors expanded: allocated ptr, aligned ptr, offset,
// sizes[R], strides[R] (int64, in elements), then the f32 scale. One CTA per (row tile, head,
// batch); one thread per tile row; online softmax in f32 over the tile's segments.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

typedef long long i64;

#define M4(T, n) T *n##_a, T *n, i64 n##_o, i64 n##_s0, i64 n##_s1, i64 n##_s2, i64 n##_s3, \
                 i64 n##_t0, i64 n##_t1, i64 n##_t2, i64 n##_t3
#define M3(T, n) T *n##_a, T *n, i64 n##_o, i64 n##_s0, i64 n##_s1, i64 n##_s2, \
                 i64 n##_t0, i64 n##_t1, i64 n##_t2
#define M2(T, n) T *n##_a, T *n, i64 n##_o, i64 n##_s0, i64 n##_s1, i64 n##_t0, i64 n##_t1

__device__ __forceinline__ float tof(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float tof(__half x) { return __half2float(x); }
template <typename T> __device__ __forceinline__ T fromf(float x);
template <> __device__ __forceinline__ __nv_bfloat16 fromf<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <> __device__ __forceinline__ __half fromf<__half>(float x) { return __float2half(x); }

template <typename T, int D>
__device__ void body(const T *q, i64 qt0, i64 qt1, i64 qt2, i64 qt3, i64 H,
                     const T *k, i64 kt0, i64 kt1, i64 kt2, i64 kt3, i64 Hkv,
                     const T *v, i64 vt0, i64 vt1, i64 vt2, i64 vt3,
                     T *o, i64 ot0, i64 ot1, i64 ot2, i64 ot3,
                     float *lse, i64 lt0, i64 lt1, i64 lt2,
                     const int *rt, i64 rt0, i64 rt1, const int *sg, i64 sg0, i64 sg1,
                     float scale) {
  const i64 tile = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const i64 hk = h / (H / Hkv);
  const int *r = rt + tile * rt0;
  const i64 row0 = r[0], rstep = r[rt1], nrows = r[2 * rt1], sb = r[3 * rt1], se = r[4 * rt1];
  for (i64 rho = threadIdx.x; rho < nrows; rho += blockDim.x) {
    const i64 row = row0 + rstep * rho;
    float qv[D], acc[D];
    for (int d = 0; d < D; ++d) {
      qv[d] = tof(q[b * qt0 + h * qt1 + row * qt2 + d * qt3]);
      acc[d] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    for (i64 s = sb; s < se; ++s) {
      const int *g = sg + s * sg0;
      const i64 col0 = g[0], cstep = g[sg1], ncols = g[2 * sg1], rlo = g[3 * sg1], rhi = g[4 * sg1];
      const i64 la = g[5 * sg1], lb = g[6 * sg1], ha = g[7 * sg1], hb = g[8 * sg1];
      if (rho < rlo || rho >= rhi) continue;
      i64 lo = la * rho + lb, hi = ha * rho + hb;
      if (lo < 0) lo = 0;
      if (hi > ncols) hi = ncols;
      for (i64 u = lo; u < hi; ++u) {
        const i64 col = col0 + cstep * u;
        float dot = 0.f;
        for (int d = 0; d < D; ++d) dot += qv[d] * tof(k[b * kt0 + hk * kt1 + col * kt2 + d * kt3]);
        const float sc = dot * scale;
        const float mn = fmaxf(m, sc);
        const float corr = (m == -INFINITY) ? 0.f : expf(m - mn);
        const float p = expf(sc - mn);
        l = l * corr + p;
        for (int d = 0; d < D; ++d)
          acc[d] = acc[d] * corr + p * tof(v[b * vt0 + hk * vt1 + col * vt2 + d * vt3]);
        m = mn;
      }
    }
    for (int d = 0; d < D; ++d)
      o[b * ot0 + h * ot1 + row * ot2 + d * ot3] = fromf<T>(l > 0.f ? acc[d] / l : 0.f);
    lse[b * lt0 + h * lt1 + row * lt2] = l > 0.f ? m + logf(l) : -INFINITY;
  }
}

#define KERNEL(NAME, T, D)                                                                       \
  extern "C" __global__ void __launch_bounds__(128) NAME(                                        \
      M4(const T, q), M4(const T, k), M4(const T, v), M4(T, o), M3(float, lse),                 \
      M2(const int, rt), M2(const int, sg), float scale) {                                      \
    body<T, D>(q, q_t0, q_t1, q_t2, q_t3, q_s1, k, k_t0, k_t1, k_t2, k_t3, k_s1,                 \
               v, v_t0, v_t1, v_t2, v_t3, o, o_t0, o_t1, o_t2, o_t3, lse, lse_t0, lse_t1, lse_t2, \
               rt, rt_t0, rt_t1, sg, sg_t0, sg_t1, scale);                                       \
  }

KERNEL(splat_fwd_bf16_d64, __nv_bfloat16, 64)
KERNEL(splat_fwd_bf16_d128, __nv_bfloat16, 128)
KERNEL(splat_fwd_f16_d64, __half, 64)
KERNEL(splat_fwd_f16_d128, __half, 128)
