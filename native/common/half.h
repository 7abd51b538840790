/*
 * fp16 / bf16 <-> fp32 conversions with round-to-nearest-even on store, as the NPU's CAST_RINT does.
 * Pure bit manipulation so that it is exact and portable (x86-64 and aarch64) and vectorises.
 */
#ifndef ACLNN_MOE_HALF_H_
#define ACLNN_MOE_HALF_H_

#include <stdint.h>
#include <string.h>

static inline float host_bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t host_f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float host_bf16_to_f32(uint16_t h) { return host_bits_to_f32((uint32_t)h << 16); }

static inline uint16_t host_f32_to_bf16(float f)
{
    uint32_t u = host_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                             /* nearest even */
    return (uint16_t)(u >> 16);
}

static inline float host_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1fu) return host_bits_to_f32(sign | 0x7f800000u | (man << 13));   /* inf / nan */
    if (exp != 0) return host_bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
    /* zero or subnormal: man * 2^-24 is exact in fp32 */
    float v = (float)man * 5.9604644775390625e-08f;
    return sign ? -v : v;
}

static inline uint16_t host_f32_to_f16(float f)
{
    uint32_t u = host_f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);                 /* nan */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {                                                  /* below 2^-14: subnormal */
        /* scale so that the fp16 subnormal unit (2^-24) becomes 1.0, then round half to even */
        float v = host_bits_to_f32(a) * 16777216.0f;
        uint32_t q = (uint32_t)v;
        float rem = v - (float)q;
        if (rem > 0.5f || (rem == 0.5f && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u;               /* rebias 127->15, round even */
    return (uint16_t)(sign | (r >> 13));
}

#endif /* ACLNN_MOE_HALF_H_ */
