/*
 * RSA keys: the public key an RSA object holds, and whether a private key's
 * components belong together (PKCS #1: n = p·q, e·d ≡ 1 mod λ(n), and the
 * CRT values derived from d, p and q). A single damaged or swapped
 * component breaks at least one of these relations.
 */
#include "verify/semantics_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include <p11-kit/pkcs11.h>

/*
 * The attribute as a number: TFS_OK with *out NULL when absent, unknown or
 * empty (nothing to check), TFS_E_NOMEM. Private components go into secure,
 * wiped BIGNUMs.
 */
static int load_bn(BIGNUM **out, const tfs_vobject *o, uint64_t type, bool secret)
{
	size_t len;
	const uint8_t *p = tfs_vobject_bytes(o, type, &len);
	*out = NULL;
	if (p == NULL || len == 0)
		return TFS_OK;
	if (len > INT32_MAX)
		return TFS_OK; /* BN_bin2bn takes an int; no real key is this large */
	BIGNUM *b = secret ? BN_secure_new() : BN_new();
	if (b == NULL || BN_bin2bn(p, (int)len, b) == NULL) {
		BN_clear_free(b);
		return TFS_E_NOMEM;
	}
	*out = b;
	return TFS_OK;
}

int tfs_sem_rsa_pub(tfs_sem_pub *out, const tfs_vobject *o)
{
	BIGNUM *n, *e;
	if (load_bn(&n, o, CKA_MODULUS, false) != TFS_OK)
		return TFS_E_NOMEM;
	if (load_bn(&e, o, CKA_PUBLIC_EXPONENT, false) != TFS_OK) {
		BN_free(n);
		return TFS_E_NOMEM;
	}
	if (n == NULL || e == NULL) { /* an unknown half: the key is unknown */
		BN_free(n);
		BN_free(e);
		return TFS_OK;
	}
	out->state = TFS_SEM_KNOWN;
	out->key_type = CKK_RSA;
	out->n = n;
	out->e = e;
	return TFS_OK;
}

enum { N, E, D, P, Q, DP, DQ, QINV, NCOMP };

/* Division and gcd are quadratic: a hostile file must not make a component
 * of megabytes cost minutes. 16384-bit moduli are OpenSSL's own limit. */
#define RSA_MAX_BYTES (16384 / 8)

static void note(char *buf, size_t size, const char *relation)
{
	size_t used = strlen(buf);
	snprintf(buf + used, size - used, "%s%s", used > 0 ? "; " : "", relation);
}

/*
 * Appends every relation that fails to `failed`. c[] holds the components
 * (NULL when not known); p and q are known and greater than 1. Returns
 * TFS_OK or TFS_E_NOMEM (OpenSSL's arithmetic only fails for memory here).
 */
static int relate(BIGNUM *const c[NCOMP], BN_CTX *bn, char *failed, size_t size)
{
	BIGNUM *p1 = BN_secure_new(), *q1 = BN_secure_new(), *t = BN_secure_new();
	int rc = TFS_E_NOMEM;
	if (p1 == NULL || q1 == NULL || t == NULL)
		goto fail;
	if (c[N] != NULL) {
		if (!BN_mul(t, c[P], c[Q], bn))
			goto fail;
		if (BN_cmp(t, c[N]) != 0)
			note(failed, size, "n != p*q");
	}
	if (!BN_sub(p1, c[P], BN_value_one()) || !BN_sub(q1, c[Q], BN_value_one()))
		goto fail;
	if (c[E] != NULL && c[D] != NULL) {
		/*
		 * e*d ≡ 1 mod λ(n), λ(n) = lcm(p-1, q-1), holds exactly when it
		 * holds mod p-1 and mod q-1 (a modulus of 1 always agrees), except
		 * for λ = 1, where e*d mod λ is 0. Checked that way: OpenSSL 3's
		 * constant-time BN_gcd for the lcm was a third of verify-integrity.
		 */
		bool ok = !(BN_is_one(p1) && BN_is_one(q1));
		for (int k = 0; k < 2 && ok; k++) {
			const BIGNUM *m = k == 0 ? p1 : q1;
			if (BN_is_one(m))
				continue;
			if (!BN_mod_mul(t, c[E], c[D], m, bn))
				goto fail;
			ok = BN_is_one(t);
		}
		if (!ok)
			note(failed, size, "e*d != 1 mod lcm(p-1, q-1)");
	}
	if (c[D] != NULL && c[DP] != NULL) {
		if (!BN_mod(t, c[D], p1, bn))
			goto fail;
		if (BN_cmp(t, c[DP]) != 0)
			note(failed, size, "exponent1 != d mod (p-1)");
	}
	if (c[D] != NULL && c[DQ] != NULL) {
		if (!BN_mod(t, c[D], q1, bn))
			goto fail;
		if (BN_cmp(t, c[DQ]) != 0)
			note(failed, size, "exponent2 != d mod (q-1)");
	}
	if (c[QINV] != NULL) {
		/* The coefficient is q^-1 mod p exactly when it is below p and
		 * coefficient*q ≡ 1 mod p (p > 1): no inverse to compute, and
		 * none exists when gcd(q, p) != 1, so that fails too. */
		if (!BN_mod_mul(t, c[QINV], c[Q], c[P], bn))
			goto fail;
		if (BN_cmp(c[QINV], c[P]) >= 0 || !BN_is_one(t))
			note(failed, size, "coefficient != q^-1 mod p");
	}
	rc = TFS_OK;
fail:
	BN_clear_free(p1);
	BN_clear_free(q1);
	BN_clear_free(t);
	return rc;
}

int tfs_sem_rsa_check_private(tfs_sem *s, const tfs_vobject *o)
{
	static const uint64_t types[NCOMP] = {
		[N] = CKA_MODULUS,        [E] = CKA_PUBLIC_EXPONENT, [D] = CKA_PRIVATE_EXPONENT,
		[P] = CKA_PRIME_1,        [Q] = CKA_PRIME_2,         [DP] = CKA_EXPONENT_1,
		[DQ] = CKA_EXPONENT_2,    [QINV] = CKA_COEFFICIENT,
	};
	BIGNUM *c[NCOMP] = {NULL};
	char failed[256] = "";
	int rc = TFS_OK;
	bool too_large = false;
	for (int i = 0; i < NCOMP && rc == TFS_OK; i++) {
		rc = load_bn(&c[i], o, types[i], i >= D);
		too_large = too_large || (c[i] != NULL && BN_num_bytes(c[i]) > RSA_MAX_BYTES);
	}
	/* Every relation goes through p and q: without them there is nothing
	 * to check (a key stored as n, e, d only is legal). */
	if (rc != TFS_OK || c[P] == NULL || c[Q] == NULL || too_large)
		goto done;
	s->stats->rsa_private++;
	if (BN_cmp(c[P], BN_value_one()) <= 0 || BN_cmp(c[Q], BN_value_one()) <= 0)
		note(failed, sizeof(failed), "a prime is 0 or 1");
	else
		rc = relate(c, s->bn, failed, sizeof(failed));
	if (rc == TFS_OK && failed[0] != '\0')
		rc = tfs_vfinding(s->vt, "rsa.inconsistent", TFS_SEV_ERROR, o, TFS_VNO_ATTR,
		                  "RSA private key components do not belong together: %s; a "
		                  "component was damaged or replaced, and the key no longer works",
		                  failed);
done:
	for (int i = 0; i < NCOMP; i++)
		BN_clear_free(c[i]);
	return rc;
}
