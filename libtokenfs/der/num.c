/* Integers as OpenSSL prints them: hex of the magnitude, and decimal. */
#include "der/der_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>

#include "core/error_internal.h"

size_t tfs_der_bit_length(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] == 0)
		i++;
	if (i == n)
		return 0;
	size_t bits = (n - i) * 8;
	for (uint8_t top = p[i]; (top & 0x80) == 0; top = (uint8_t)(top << 1))
		bits--;
	return bits;
}

int tfs_der_integer_check(const uint8_t *p, size_t n, uint64_t off, const char *what,
                          tfs_error *err)
{
	if (n == 0)
		return tfs_error_set(err, TFS_E_FORMAT, off, "%s: INTEGER with no content octets", what);
	/* X.690 8.3.2: the first 9 bits are never all equal. OpenSSL rejects
	 * such padding too, so this keeps both readings the same. */
	if (n > 1 && ((p[0] == 0x00 && (p[1] & 0x80) == 0) || (p[0] == 0xff && (p[1] & 0x80) != 0)))
		return tfs_error_set(err, TFS_E_FORMAT, off,
		                     "%s: INTEGER with a redundant leading 0x%02x octet (not DER)",
		                     what, p[0]);
	return TFS_OK;
}

int tfs_der_integer_text(const uint8_t *p, size_t n, char **hex, char **dec,
                         uint64_t off, const char *what, tfs_error *err)
{
	*hex = NULL;
	*dec = NULL;
	int check = tfs_der_integer_check(p, n, off, what, err);
	if (check != TFS_OK)
		return check;

	bool neg = (p[0] & 0x80) != 0;
	uint8_t *mag = malloc(n);
	BIGNUM *bn = NULL;
	char *bdec = NULL;
	tfs_strbuf sb = {0};
	int rc = TFS_E_NOMEM;
	if (mag == NULL)
		goto fail;
	/* Two's complement to magnitude: invert and add one. */
	memcpy(mag, p, n);
	if (neg) {
		unsigned carry = 1;
		for (size_t i = n; i-- > 0;) {
			unsigned v = (uint8_t)~mag[i] + carry;
			mag[i] = (uint8_t)v;
			carry = v >> 8;
		}
	}
	size_t skip = 0;
	while (skip + 1 < n && mag[skip] == 0)
		skip++;

	if (neg)
		tfs_sb_putc(&sb, '-');
	tfs_sb_hex(&sb, mag + skip, n - skip, true, NULL);
	*hex = tfs_sb_take(&sb);
	if (*hex == NULL)
		goto fail;

	/* Decimal conversion is quadratic: a hostile 1 MiB INTEGER took a
	 * minute. Serials and exponents worth reading in decimal are short;
	 * longer numbers are shown in hex only. */
	if (n - skip > 64) {
		*dec = strdup("(over 512 bits: see the hex form)");
		if (*dec == NULL)
			goto fail;
		rc = TFS_OK;
		goto fail;
	}
	bn = BN_bin2bn(mag + skip, (int)(n - skip), NULL);
	if (bn == NULL)
		goto fail;
	BN_set_negative(bn, neg);
	bdec = BN_bn2dec(bn);
	if (bdec == NULL)
		goto fail;
	*dec = strdup(bdec);
	if (*dec == NULL)
		goto fail;
	rc = TFS_OK;
fail:
	if (rc != TFS_OK) {
		free(*hex);
		*hex = NULL;
		tfs_nomem(err);
	}
	OPENSSL_free(bdec);
	BN_free(bn);
	free(mag);
	return rc;
}
