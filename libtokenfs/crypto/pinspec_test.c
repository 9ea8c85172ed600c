/* PIN sources: pass:, env:, file:, fd:, stdin and the terminal prompt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tokenfs/pinspec.h"
#include "tokenfs/crypto.h"

/* Reads a PIN from spec and checks it equals want (want_len bytes). */
static void expect_pin(const char *spec, const void *want, size_t want_len)
{
	uint8_t *pin = NULL;
	size_t len = 99;
	tfs_error err;
	tfs_error_clear(&err);
	int rc = tfs_pin_from_spec(&pin, &len, spec, NULL, &err);
	if (rc != TFS_OK)
		fail_msg("%s: %s", spec, err.what);
	assert_non_null(pin);
	assert_int_equal(len, want_len);
	if (want_len > 0)
		assert_memory_equal(pin, want, want_len);
	tfs_secure_free(pin, len);
}

/* Expects spec to fail with code, and the message not to contain secret. */
static void expect_fail(const char *spec, int code, const char *secret)
{
	uint8_t *pin = (uint8_t *)1;
	size_t len = 99;
	tfs_error err;
	tfs_error_clear(&err);
	int rc = tfs_pin_from_spec(&pin, &len, spec, NULL, &err);
	if (rc != code)
		fail_msg("spec %s: got %s (%s), want %s", spec, tfs_status_name(rc), err.what,
		         tfs_status_name(code));
	assert_null(pin);
	assert_int_equal(len, 0);
	assert_true(err.what[0] != '\0' && strchr(err.what, '\n') == NULL);
	if (secret != NULL && strstr(err.what, secret) != NULL)
		fail_msg("message quotes the secret: %s", err.what);
}

/* A temporary file holding len bytes; returns "file:<path>" in spec. */
static void make_file(char path[64], char spec[80], const void *data, size_t len)
{
	strcpy(path, "/tmp/pinspec_test.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	snprintf(spec, 80, "file:%s", path);
}

static void expect_file(const void *data, size_t len, const void *want, size_t want_len)
{
	char path[64], spec[80];
	make_file(path, spec, data, len);
	expect_pin(spec, want, want_len);
	unlink(path);
}

static void test_pass(void **state)
{
	(void)state;
	expect_pin("pass:user-pin-1", "user-pin-1", 10);
	expect_pin("pass:", "", 0);
	expect_pin("pass:with:colon and space", "with:colon and space", 20);
}

static void test_env(void **state)
{
	(void)state;
	setenv("TFS_PINSPEC_TEST", "so-secret-1", 1);
	expect_pin("env:TFS_PINSPEC_TEST", "so-secret-1", 11);
	setenv("TFS_PINSPEC_TEST", "", 1);
	expect_pin("env:TFS_PINSPEC_TEST", "", 0);
	unsetenv("TFS_PINSPEC_TEST");
	expect_fail("env:TFS_PINSPEC_TEST", TFS_E_INVALID, "TFS_PINSPEC_TEST");
	/* A PIN typed where the variable's name (or fd number) goes is never
	 * echoed. */
	expect_fail("env:Secret-PIN-4711", TFS_E_INVALID, "4711");
	expect_fail("fd:47114711", TFS_E_IO, "4711");
	expect_fail("env:", TFS_E_INVALID, NULL);
}

static void test_file(void **state)
{
	(void)state;
	expect_file("pin-1\n", 6, "pin-1", 5);
	expect_file("pin-1", 5, "pin-1", 5);            /* no trailing newline */
	expect_file("pin-1\r\n", 7, "pin-1", 5);        /* CRLF */
	expect_file("pin-1\nsecond\n", 13, "pin-1", 5); /* first line only */
	expect_file("\n", 1, "", 0);                    /* the empty PIN */
	expect_file("\r\n", 2, "", 0);
	expect_file("a\0b\xff\n", 5, "a\0b\xff", 4);    /* raw bytes, NUL included */
	expect_file(" spaced \n", 9, " spaced ", 8);    /* no trimming */

	char path[64], spec[80];
	make_file(path, spec, "", 0);                   /* no line at all */
	expect_fail(spec, TFS_E_INVALID, NULL);
	unlink(path);
	expect_fail("file:/nonexistent/tokenfs/pin", TFS_E_IO, "nonexistent");
	/* A PIN typed where the path goes is never echoed. */
	expect_fail("file:Secret-PIN-4711", TFS_E_IO, "4711");
}

static void test_long_lines(void **state)
{
	(void)state;
	static uint8_t buf[TFS_PIN_MAX + 3];
	memset(buf, 'x', sizeof(buf));
	buf[TFS_PIN_MAX] = '\n';
	expect_file(buf, TFS_PIN_MAX + 1, buf, TFS_PIN_MAX);
	buf[TFS_PIN_MAX] = '\r';
	buf[TFS_PIN_MAX + 1] = '\n';
	expect_file(buf, TFS_PIN_MAX + 2, buf, TFS_PIN_MAX);
	buf[TFS_PIN_MAX] = 'x';
	char path[64], spec[80];
	make_file(path, spec, buf, sizeof(buf));
	expect_fail(spec, TFS_E_LIMIT, NULL);
	unlink(path);
}

static void test_fd_pipe(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "pipe-pin\nrest", 13), 13);
	close(p[1]);
	char spec[32];
	snprintf(spec, sizeof(spec), "fd:%d", p[0]);
	expect_pin(spec, "pipe-pin", 8);
	/* Nothing after the first line was consumed. */
	char rest[8] = {0};
	assert_int_equal(read(p[0], rest, sizeof(rest)), 4);
	assert_string_equal(rest, "rest");
	/* At end of input there is no line left. */
	expect_fail(spec, TFS_E_INVALID, NULL);
	close(p[0]);
	expect_fail(spec, TFS_E_IO, NULL); /* closed descriptor */
	expect_fail("fd:", TFS_E_INVALID, NULL);
	expect_fail("fd:x", TFS_E_INVALID, NULL);
	expect_fail("fd:-1", TFS_E_INVALID, NULL);
	expect_fail("fd:3x", TFS_E_INVALID, NULL);
	expect_fail("fd:99999999999999999999", TFS_E_INVALID, NULL);
}

static void test_stdin(void **state)
{
	(void)state;
	int saved = dup(STDIN_FILENO);
	int p[2];
	assert_true(saved >= 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "stdin-pin\r\n", 11), 11);
	close(p[1]);
	assert_true(dup2(p[0], STDIN_FILENO) >= 0);
	close(p[0]);
	expect_pin("stdin", "stdin-pin", 9);
	assert_true(dup2(saved, STDIN_FILENO) >= 0);
	close(saved);
}

static void test_unknown_source_is_not_echoed(void **state)
{
	(void)state;
	expect_fail("hunter2-pin", TFS_E_INVALID, "hunter2");
	expect_fail("pss:hunter2", TFS_E_INVALID, "hunter2");
	expect_fail("", TFS_E_INVALID, NULL);
	expect_fail("stdin:", TFS_E_INVALID, NULL);
	expect_fail("PASS:x", TFS_E_INVALID, NULL);
}

/* Without a controlling terminal (a new session has none), no prompt. */
static void test_prompt_without_terminal(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setsid() < 0)
			_exit(3);
		uint8_t *pin = NULL;
		size_t len = 0;
		tfs_error err;
		int rc = tfs_pin_from_spec(&pin, &len, NULL, "PIN: ", &err);
		_exit(rc == TFS_E_INVALID && pin == NULL && strstr(err.what, "terminal") != NULL
		      ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_fd_pipe),
		cmocka_unit_test(test_stdin),
		cmocka_unit_test(test_unknown_source_is_not_echoed),
		cmocka_unit_test(test_prompt_without_terminal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
