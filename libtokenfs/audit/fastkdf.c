/*
 * SoftHSM's KDF at the speed of one SHA-256 compression per round.
 *
 *   H = SHA-256(salt || PIN); then H = SHA-256(H), 1499 + salt[7] more times
 *
 * Every round after the first hashes exactly 32 bytes, so its message is one
 * 64-byte block that never changes shape: H, the 0x80 terminator, zeros, and
 * the bit length 256. Keeping that block, running OpenSSL's block function
 * on it from the initial state and writing the new state back into its
 * first 32 bytes is the whole round. EVP cannot do this: each of its
 * digests re-pads and, in OpenSSL 3, goes through the provider layer,
 * several times the cost of the compression itself.
 *
 * SHA256_Init and SHA256_Transform are deprecated in OpenSSL 3 in favour of
 * EVP but still part of its API; they are the only public entry to the
 * block function (SHA-NI or AVX2 where the CPU has them). The deprecation
 * warning is suppressed in this file only, for that reason.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "audit/audit_internal.h"
#include "tokenfs/audit.h"

#define KDF_BASE_ROUNDS 1500u

/*
 * Two details decide whether a round costs one compression or nearly two.
 * The block function loads the state and the block 16 bytes at a time; a
 * load that spans several smaller stores still in flight cannot be
 * forwarded and stalls. So the initial state is copied in from a template
 * (16-byte moves, where SHA256_Init writes 4-byte words), and the new state
 * goes back into the block byte-swapped 16 bytes at a time (pshufb) where
 * the CPU has SSSE3, which every CPU with SHA-NI or AVX2 has.
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_SSSE3_PATH 1
__attribute__((target("ssse3"))) static void put_state_ssse3(uint8_t *p, const SHA256_CTX *c)
{
	const __m128i swap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
	__m128i a = _mm_loadu_si128((const __m128i *)(const void *)&c->h[0]);
	__m128i b = _mm_loadu_si128((const __m128i *)(const void *)&c->h[4]);
	_mm_storeu_si128((__m128i *)(void *)p, _mm_shuffle_epi8(a, swap));
	_mm_storeu_si128((__m128i *)(void *)(p + 16), _mm_shuffle_epi8(b, swap));
}
#endif

/* The state words out as the digest: big-endian, as SHA256_Final writes. */
static void put_state_portable(uint8_t *p, const SHA256_CTX *c)
{
	for (int i = 0; i < 8; i++) {
		SHA_LONG v = c->h[i];
		p[4 * i] = (uint8_t)(v >> 24);
		p[4 * i + 1] = (uint8_t)(v >> 16);
		p[4 * i + 2] = (uint8_t)(v >> 8);
		p[4 * i + 3] = (uint8_t)v;
	}
}

/* The rounds 2..n, with the state written back by `put`. */
static inline __attribute__((always_inline)) void
rounds_loop(SHA256_CTX *c, const SHA256_CTX *init, uint8_t *block, unsigned rounds,
            void (*put)(uint8_t *, const SHA256_CTX *))
{
	for (unsigned i = 1; i < rounds; i++) {
		memcpy(c->h, init->h, sizeof(c->h));
		SHA256_Transform(c, block);
		put(block, c);
	}
}

/* Two independent KDFs, round by round: a single chain leaves the SHA unit
 * idle while each round's result travels back into the next block; with a
 * second chain in between, the out-of-order core overlaps the two (about
 * 1.5 times the compressions per second of one chain, on SHA-NI). */
static inline __attribute__((always_inline)) void
rounds_loop2(SHA256_CTX *c, const SHA256_CTX *init, uint8_t *b0, uint8_t *b1, unsigned rounds,
             void (*put)(uint8_t *, const SHA256_CTX *))
{
	for (unsigned i = 1; i < rounds; i++) {
		memcpy(c[0].h, init->h, sizeof(c[0].h));
		memcpy(c[1].h, init->h, sizeof(c[1].h));
		SHA256_Transform(&c[0], b0);
		SHA256_Transform(&c[1], b1);
		put(b0, &c[0]);
		put(b1, &c[1]);
	}
}

/* The first hash, SHA-256(salt || PIN), into the padded block of round 2. */
static void first_block(uint8_t block[SHA256_CBLOCK], const SHA256_CTX *init, const uint8_t *pin,
                        size_t pin_len, const uint8_t salt[TFS_SALT_LEN])
{
	SHA256_CTX c = *init;
	SHA256_Update(&c, salt, TFS_SALT_LEN);
	if (pin_len > 0)
		SHA256_Update(&c, pin, pin_len);
	SHA256_Final(block, &c);
	/* The padded block of a 32-byte message: 0x80, zeros, length 256 bits. */
	memset(block + 32, 0, SHA256_CBLOCK - 32);
	block[32] = 0x80;
	block[62] = 0x01;
	OPENSSL_cleanse(&c, sizeof(c));
}

#ifdef HAVE_SSSE3_PATH
static bool have_ssse3(void)
{
	static _Atomic int ssse3 = -1; /* every thread computes the same */
	if (ssse3 < 0)
		ssse3 = __builtin_cpu_supports("ssse3") ? 1 : 0;
	return ssse3 == 1;
}
#endif

void audit_kdf_rounds2(uint8_t out0[TFS_KEY_LEN], uint8_t out1[TFS_KEY_LEN], const uint8_t *pin0,
                       size_t len0, const uint8_t *pin1, size_t len1,
                       const uint8_t salt[TFS_SALT_LEN], unsigned rounds)
{
	SHA256_CTX c[2], init;
	uint8_t b0[SHA256_CBLOCK] __attribute__((aligned(64)));
	uint8_t b1[SHA256_CBLOCK] __attribute__((aligned(64)));
	SHA256_Init(&init);
	first_block(b0, &init, pin0, len0, salt);
	first_block(b1, &init, pin1, len1, salt);
	c[0] = c[1] = init;
#ifdef HAVE_SSSE3_PATH
	if (have_ssse3())
		rounds_loop2(c, &init, b0, b1, rounds, put_state_ssse3);
	else
#endif
		rounds_loop2(c, &init, b0, b1, rounds, put_state_portable);
	memcpy(out0, b0, TFS_KEY_LEN);
	memcpy(out1, b1, TFS_KEY_LEN);
	OPENSSL_cleanse(b0, sizeof(b0));
	OPENSSL_cleanse(b1, sizeof(b1));
	OPENSSL_cleanse(c, sizeof(c));
}

void audit_kdf_rounds(uint8_t out[TFS_KEY_LEN], const uint8_t *pin, size_t pin_len,
                      const uint8_t salt[TFS_SALT_LEN], unsigned rounds)
{
	SHA256_CTX c, init;
	uint8_t block[SHA256_CBLOCK] __attribute__((aligned(64)));

	SHA256_Init(&init); /* the initial state, copied in before each round */
	first_block(block, &init, pin, pin_len, salt);
	c = init;
#ifdef HAVE_SSSE3_PATH
	if (have_ssse3())
		rounds_loop(&c, &init, block, rounds, put_state_ssse3);
	else
#endif
		rounds_loop(&c, &init, block, rounds, put_state_portable);
	memcpy(out, block, TFS_KEY_LEN);
	OPENSSL_cleanse(block, sizeof(block));
	OPENSSL_cleanse(&c, sizeof(c));
}

void tfs_audit_kdf(uint8_t out[TFS_KEY_LEN], const uint8_t *pin, size_t pin_len,
                   const uint8_t salt[TFS_SALT_LEN])
{
	audit_kdf_rounds(out, pin, pin_len, salt, KDF_BASE_ROUNDS + salt[TFS_SALT_LEN - 1]);
}

unsigned audit_rounds(const uint8_t salt[TFS_SALT_LEN])
{
	return KDF_BASE_ROUNDS + salt[TFS_SALT_LEN - 1];
}

double audit_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double tfs_audit_compression_rate(double seconds, unsigned chains)
{
	/* The same call the KDF makes, on one or two running states: the
	 * ceiling of the KDF, with no work around the call. */
	SHA256_CTX c[2];
	uint8_t block[2][SHA256_CBLOCK];
	memset(block, 0, sizeof(block));
	block[1][0] = 1;
	uint64_t n = 0;
	double start = audit_now(), now = start;
	SHA256_Init(&c[0]);
	SHA256_Init(&c[1]);
	do {
		if (chains >= 2) {
			for (int i = 0; i < 2048; i++) {
				SHA256_Transform(&c[0], block[0]);
				SHA256_Transform(&c[1], block[1]);
			}
		} else {
			for (int i = 0; i < 4096; i++)
				SHA256_Transform(&c[0], block[0]);
		}
		n += 4096;
		now = audit_now();
	} while (now - start < seconds);
	OPENSSL_cleanse(c, sizeof(c));
	return (double)n / (now - start);
}
