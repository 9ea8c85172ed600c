/*
 * tfs_rekey_token: new PINs, a fresh token key, a new label (see
 * tokenfs/change.h). This file turns the request into a tfs_change, with
 * SoftHSM's own rules: PIN lengths, the token flags C_InitPIN and C_SetPIN
 * leave, the label's padding. The work is tfs_change_token's.
 */
#include "change/change.h"

#include <string.h>

#include "core/error_internal.h"
#include "core/utf8.h"

#include <openssl/crypto.h>

/* CKA_OS_TOKENFLAGS bits (PKCS#11 CKF_*). */
#define CKF_USER_PIN_INITIALIZED 0x00000008u
#define CKF_USER_PIN_STATE 0x000F0000u /* COUNT_LOW, FINAL_TRY, LOCKED, TO_BE_CHANGED */
#define CKF_SO_PIN_STATE 0x00F00000u

static int check_pin(const uint8_t *pin, size_t len, const char *which, tfs_error *err)
{
	if (pin != NULL && (len < TFS_PIN_MIN_LEN || len > TFS_PIN_MAX_LEN))
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "the new %s PIN has %zu bytes; "
		                     "SoftHSM takes %d to %d", which, len, TFS_PIN_MIN_LEN, TFS_PIN_MAX_LEN);
	return TFS_OK;
}

/* CKA_OS_TOKENLABEL: 32 bytes, blank padded; text only. */
static int make_label(uint8_t out[32], const char *label, tfs_error *err)
{
	size_t n = strlen(label);
	if (n > 32)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "the label has %zu bytes; a "
		                     "token label holds at most 32", n);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = tfs_utf8_decode((const uint8_t *)label + i, n - i, &cp);
		if (l == 0 || cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
			return tfs_error_set(err, TFS_E_INVALID, i, "the label is not UTF-8 text (byte %zu)", i);
		i += l;
	}
	memset(out, ' ', 32);
	memcpy(out, label, n);
	return TFS_OK;
}

int tfs_rekey_token(tfs_change_result *res, const char *token_dir, const tfs_rekey_options *o,
                    tfs_error *err)
{
	memset(res, 0, sizeof(*res));
	tfs_error_clear(err);
	uint8_t label[32];
	bool new_pins = o->new_user_pin != NULL || o->new_so_pin != NULL;
	int rc = check_pin(o->new_user_pin, o->new_user_pin_len, "user", err);
	if (rc == TFS_OK)
		rc = check_pin(o->new_so_pin, o->new_so_pin_len, "SO", err);
	if (rc == TFS_OK && o->new_label != NULL)
		rc = make_label(label, o->new_label, err);
	if (rc == TFS_OK && !new_pins && !o->rotate_token_key && o->new_label == NULL &&
	    o->to == TFS_LAYOUT_NONE)
		rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "nothing to change: give a new "
		                   "PIN, a new token key, a new label or a layout");
	if (rc != TFS_OK)
		return rc;
	tfs_change c = {
		.pin = {o->so_pin, o->user_pin},
		.pin_len = {o->so_pin_len, o->user_pin_len},
		.new_pin = {o->new_so_pin, o->new_user_pin},
		.new_pin_len = {o->new_so_pin_len, o->new_user_pin_len},
		.need_key = new_pins || o->rotate_token_key || o->to != TFS_LAYOUT_NONE,
		.rotate = o->rotate_token_key,
		.values_to = o->to,
		.blobs_to = o->to,
		.label = o->new_label != NULL ? label : NULL,
		.dry_run = o->dry_run,
		.lock_timeout_ms = o->lock_timeout_ms,
		.progress = o->progress,
		.problem = o->problem,
		.ctx = o->ctx,
	};
	/* As SoftHSM's C_InitPIN and C_SetPIN leave them: a new PIN is a
	 * fresh start for its retry state. */
	if (o->new_user_pin != NULL) {
		c.flags_clear |= CKF_USER_PIN_STATE;
		c.flags_set |= CKF_USER_PIN_INITIALIZED;
	}
	if (o->new_so_pin != NULL)
		c.flags_clear |= CKF_SO_PIN_STATE;
	rc = tfs_change_token(res, token_dir, &c, err);
	OPENSSL_cleanse(label, sizeof(label));
	return rc;
}
