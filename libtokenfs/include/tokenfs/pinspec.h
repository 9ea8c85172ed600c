/*
 * Where a PIN comes from, in OpenSSL's -passin syntax:
 *
 *   pass:PIN    the PIN itself (visible in ps and shell history: tests only)
 *   env:VAR     the value of environment variable VAR
 *   file:PATH   the first line of a file
 *   fd:N        the first line read from file descriptor N (left open)
 *   stdin       the first line of standard input
 *   NULL        prompt on the terminal (/dev/tty) with echo off
 *
 * A "first line" ends at the first newline, which is dropped with a '\r'
 * before it; a file with no newline is one line. A line may be empty (the
 * empty PIN), but an input with no line at all (zero bytes) is an error.
 * PINs are raw bytes: no trimming, no character set.
 */
#ifndef TOKENFS_PINSPEC_H
#define TOKENFS_PINSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "tokenfs/error.h"

/* Longest PIN line accepted; SoftHSM itself takes at most 255 bytes. */
#define TFS_PIN_MAX 1024

/*
 * Reads a PIN as spec says. On success *pin is a new buffer of *pin_len
 * bytes (at least 1 byte is allocated, also for the empty PIN) that the
 * caller frees with tfs_secure_free(*pin, *pin_len). prompt is shown on the
 * terminal when spec is NULL ("PIN: " when prompt is NULL). Errors:
 * TFS_E_INVALID (bad spec, unset variable, no terminal, empty input),
 * TFS_E_IO (unreadable file or descriptor), TFS_E_LIMIT (line longer than
 * TFS_PIN_MAX), TFS_E_NOMEM. No message ever contains the PIN.
 */
int tfs_pin_from_spec(uint8_t **pin, size_t *pin_len, const char *spec,
                      const char *prompt, tfs_error *err);

#endif
