/*
 * PIN input in OpenSSL's -passin syntax: see tokenfs/pinspec.h.
 *
 * Every byte of the PIN passes through one stack buffer, wiped before
 * return, and one heap buffer, handed to the caller. Lines are read one
 * byte per read(2) so that nothing after the first line is consumed: the
 * rest of stdin or of a pipe stays for whoever reads it next.
 */
#include "tokenfs/pinspec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/error_internal.h"
#include "tokenfs/crypto.h"

#define SOURCES "pass:PIN, env:VAR, file:PATH, fd:N or stdin"

/* A new buffer holding the len bytes at src; at least 1 byte. */
static int dup_pin(uint8_t **out, size_t *out_len, const void *src, size_t len, tfs_error *err)
{
	if (len > TFS_PIN_MAX)
		return tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
		                     "PIN is %zu bytes; at most %d are accepted", len, TFS_PIN_MAX);
	uint8_t *p = malloc(len > 0 ? len : 1);
	if (p == NULL)
		return tfs_nomem(err);
	if (len > 0)
		memcpy(p, src, len);
	*out = p;
	*out_len = len;
	return TFS_OK;
}

/* The signal that interrupted a terminal prompt, or 0. */
static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	caught = sig;
}

/*
 * The first line of fd, without "\n" or "\r\n". `what` names the source in
 * messages. When `tty` is set a signal ends the read; otherwise reads
 * interrupted by a signal are retried.
 */
static int read_line(uint8_t **out, size_t *out_len, int fd, const char *what, bool tty,
                     tfs_error *err)
{
	uint8_t buf[TFS_PIN_MAX + 1]; /* one more for a '\r' before the newline */
	uint8_t c = 0;
	size_t n = 0;
	bool any = false;
	int rc;

	for (;;) {
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR && !(tty && caught != 0))
			continue;
		if (r < 0) {
			rc = errno == EINTR
			     ? tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			                     "PIN entry interrupted")
			     : tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET,
			                     "cannot read the PIN from %s: %s", what, strerror(errno));
			goto done;
		}
		if (r == 0 || c == '\n') {
			any = any || r > 0;
			break;
		}
		any = true;
		if (n == sizeof(buf)) {
			rc = tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
			                   "the PIN line from %s is longer than %d bytes", what, TFS_PIN_MAX);
			goto done;
		}
		buf[n++] = c;
	}
	if (!any) {
		rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                   "%s holds no PIN line (an empty PIN is an empty line)", what);
		goto done;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	rc = dup_pin(out, out_len, buf, n, err);
done:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(&c, sizeof(c));
	return rc;
}

static void write_all(int fd, const char *s)
{
	size_t len = strlen(s);
	while (len > 0) {
		ssize_t w = write(fd, s, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* a prompt that cannot be shown does not stop the read */
		s += w;
		len -= (size_t)w;
	}
}

/* Signals that would otherwise kill the process with echo still off. */
static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NSIGNALS (sizeof(tty_signals) / sizeof(tty_signals[0]))

static int prompt_tty(uint8_t **out, size_t *out_len, const char *prompt, tfs_error *err)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "no terminal to ask for the PIN on (/dev/tty: %s); "
		                     "give it as " SOURCES, strerror(errno));
	struct termios old, noecho;
	if (tcgetattr(fd, &old) != 0) {
		int e = errno;
		close(fd);
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "cannot turn off echo on /dev/tty (%s); give the PIN as " SOURCES,
		                     strerror(e));
	}
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;

	/* Catch the signals that end a prompt, so that the terminal gets its
	 * echo back before the signal takes its usual effect. No SA_RESTART:
	 * the read must return. */
	struct sigaction sa, saved[NSIGNALS];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	caught = 0;
	for (size_t i = 0; i < NSIGNALS; i++)
		sigaction(tty_signals[i], &sa, &saved[i]);

	/* Echo off (and stale typeahead flushed) before the prompt shows:
	 * TCSAFLUSH discards unread input, so a PIN typed as soon as the prompt
	 * appears must not be in flight when it runs. */
	int rc;
	if (tcsetattr(fd, TCSAFLUSH, &noecho) != 0) {
		rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                   "cannot turn off echo on /dev/tty (%s); give the PIN as " SOURCES,
		                   strerror(errno));
	} else {
		write_all(fd, prompt != NULL ? prompt : "PIN: ");
		rc = read_line(out, out_len, fd, "the terminal", true, err);
	}
	tcsetattr(fd, TCSAFLUSH, &old);
	write_all(fd, "\n"); /* the user's Enter was not echoed */
	close(fd);

	for (size_t i = 0; i < NSIGNALS; i++)
		sigaction(tty_signals[i], &saved[i], NULL);
	if (caught != 0) {
		if (rc == TFS_OK) {
			tfs_secure_free(*out, *out_len);
			*out = NULL;
			*out_len = 0;
			rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "PIN entry interrupted");
		}
		raise(caught); /* now with the caller's handler or the default */
	}
	return rc;
}

/* Neither the path after file: nor the name after env: is ever quoted: a
 * user who typed the PIN there by mistake would see it echoed, and so would
 * every log the message reaches. The option the SPEC belongs to is named by
 * the caller. */
static int from_file(uint8_t **out, size_t *out_len, const char *path, tfs_error *err)
{
	const char *what = "the PIN file (the path after file:)";
	int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "cannot open %s: %s", what,
		                     strerror(errno));
	int rc = read_line(out, out_len, fd, what, false, err);
	close(fd);
	return rc;
}

static int from_fd(uint8_t **out, size_t *out_len, const char *num, tfs_error *err)
{
	char *end = NULL;
	errno = 0;
	long fd = strtol(num, &end, 10);
	if (num[0] < '0' || num[0] > '9' || *end != '\0' || errno != 0 || fd > INT_MAX)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "fd: must be followed by a file descriptor number");
	/* Not even the number: a numeric PIN typed after fd: would be echoed. */
	return read_line(out, out_len, (int)fd, "the file descriptor after fd:", false, err);
}

static int from_env(uint8_t **out, size_t *out_len, const char *name, tfs_error *err)
{
	if (name[0] == '\0')
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "env: must be followed by a variable name");
	const char *v = getenv(name);
	if (v == NULL)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "the environment variable named after env: is not set");
	/* The whole value, as OpenSSL takes it: a variable has no lines. */
	return dup_pin(out, out_len, v, strlen(v), err);
}

int tfs_pin_from_spec(uint8_t **pin, size_t *pin_len, const char *spec,
                      const char *prompt, tfs_error *err)
{
	*pin = NULL;
	*pin_len = 0;
	if (spec == NULL)
		return prompt_tty(pin, pin_len, prompt, err);
	if (strncmp(spec, "pass:", 5) == 0)
		return dup_pin(pin, pin_len, spec + 5, strlen(spec + 5), err);
	if (strncmp(spec, "env:", 4) == 0)
		return from_env(pin, pin_len, spec + 4, err);
	if (strncmp(spec, "file:", 5) == 0)
		return from_file(pin, pin_len, spec + 5, err);
	if (strncmp(spec, "fd:", 3) == 0)
		return from_fd(pin, pin_len, spec + 3, err);
	if (strcmp(spec, "stdin") == 0)
		return read_line(pin, pin_len, STDIN_FILENO, "standard input", false, err);
	/* Never quote the spec: a user who typed the PIN itself would see it
	 * in the message, and in any log the message ends up in. */
	return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
	                     "unknown PIN source: use " SOURCES);
}
