// A small seeded pseudo-random generator (SplitMix64, Steele, Lea and Flood,
// "Fast splittable pseudorandom number generators", OOPSLA 2014) for the
// augmentation and training code. It uses only 64-bit integer arithmetic and
// one exact conversion to double, so a seed gives the same numbers natively
// and in WebAssembly. The std:: distributions are not used because their
// algorithms differ between standard libraries.
#ifndef DUALMEM_RANDOM_H_
#define DUALMEM_RANDOM_H_

#include <cstdint>

namespace dualmem {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  // Seeds a generator for item `stream` of a seeded sequence, so that item k
  // does not depend on how many items come before or after it.
  static SplitMix64 ForStream(uint64_t seed, uint64_t stream) {
    SplitMix64 mixer(seed ^ (stream * 0xD1B54A32D192ED03ull));
    return SplitMix64(mixer.Next());
  }

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits, converted exactly.
  double NextDouble() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, bound) for bound >= 1. The modulo bias is below
  // bound / 2^64, negligible for the small bounds used here.
  uint64_t NextBelow(uint64_t bound) { return Next() % bound; }

 private:
  uint64_t state_;
};

}  // namespace dualmem

#endif  // DUALMEM_RANDOM_H_
