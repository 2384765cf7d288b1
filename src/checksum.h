// CRC-32C (Castagnoli polynomial 0x1EDC6F41, bit-reflected, initial value
// and final XOR 0xFFFFFFFF), the checksum of iSCSI, ext4 and SCTP. It
// detects every burst error up to 32 bits and is the check at the end of a
// memory snapshot.
#ifndef DUALMEM_CHECKSUM_H_
#define DUALMEM_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

namespace dualmem {

// Returns the CRC-32C of `size` bytes. Pass the result of a previous call as
// `crc` to continue over data split into pieces; 0 starts a new checksum.
// Crc32c("123456789") is 0xE3069283.
uint32_t Crc32c(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace dualmem

#endif  // DUALMEM_CHECKSUM_H_
