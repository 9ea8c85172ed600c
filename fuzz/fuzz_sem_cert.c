/*
 * libFuzzer target: verify's reader of certificates and SPKIs without
 * OpenSSL's X.509 parser (verify/semantics_cert_der.c) against d2i_X509 and
 * d2i_X509_PUBKEY, the judges it must agree with. Whenever the reader takes
 * a value, OpenSSL must take it whole too, and give the same subject,
 * issuer and serial number DER and the same key (RSA n and e, EC group and
 * point, or the same defect). Every input is tried as both.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "verify/semantics_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_pub(tfs_sem_pub *fast, tfs_sem_pub *slow)
{
	if (fast->state != slow->state || fast->key_type != slow->key_type)
		abort();
	if (fast->state == TFS_SEM_INVALID && strcmp(fast->why, slow->why) != 0)
		abort();
	if (fast->state == TFS_SEM_KNOWN) {
		BN_CTX *bn = BN_CTX_new();
		char why[160];
		if (bn == NULL || tfs_sem_pub_cmp(fast, slow, bn, why, sizeof(why)) != 1)
			abort();
		BN_CTX_free(bn);
	}
}

static void same_bytes(const uint8_t *a, size_t alen, const unsigned char *b, size_t blen)
{
	if (alen != blen || memcmp(a, b, alen) != 0)
		abort();
}

static void check_cert(const uint8_t *data, size_t size)
{
	tfs_sem_cert_parts c;
	tfs_sem_pub fast = {0}, slow = {0};
	if (tfs_sem_cert_parts_read(&c, &fast, data, size) != TFS_OK)
		return;
	const unsigned char *p = data, *der;
	size_t dlen;
	X509 *x = size <= LONG_MAX ? d2i_X509(NULL, &p, (long)size) : NULL;
	if (x == NULL || p != data + size)
		abort(); /* read here, refused by d2i_X509 */
	if (X509_NAME_get0_der(X509_get_subject_name(x), &der, &dlen) != 1)
		abort();
	same_bytes(c.subject, c.subject_len, der, dlen);
	if (X509_NAME_get0_der(X509_get_issuer_name(x), &der, &dlen) != 1)
		abort();
	same_bytes(c.issuer, c.issuer_len, der, dlen);
	unsigned char *serial = NULL;
	int slen = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &serial);
	if (slen <= 0)
		abort();
	same_bytes(c.serial, c.serial_len, serial, (size_t)slen);
	OPENSSL_free(serial);
	if (tfs_sem_x509_pub(&slow, X509_get_X509_PUBKEY(x)) != TFS_OK)
		abort();
	same_pub(&fast, &slow);
	tfs_sem_pub_clear(&fast);
	tfs_sem_pub_clear(&slow);
	X509_free(x);
}

static void check_spki(const uint8_t *data, size_t size)
{
	tfs_sem_pub fast = {0}, slow = {0};
	if (tfs_sem_spki_pub_der(&fast, data, size) != TFS_OK)
		return;
	const unsigned char *p = data;
	X509_PUBKEY *xpk = size <= LONG_MAX ? d2i_X509_PUBKEY(NULL, &p, (long)size) : NULL;
	if (xpk == NULL || p != data + size)
		abort();
	if (tfs_sem_x509_pub(&slow, xpk) != TFS_OK)
		abort();
	same_pub(&fast, &slow);
	tfs_sem_pub_clear(&fast);
	tfs_sem_pub_clear(&slow);
	X509_PUBKEY_free(xpk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_cert(data, size);
	check_spki(data, size);
	ERR_clear_error();
	return 0;
}
