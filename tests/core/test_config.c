/* test_config.c - sam.conf parsing, typed lookups, env overrides, errors. */
#include <stdlib.h>
#include <string.h>

#include "sam/config.h"
#include "test.h"

TEST(config_parses_sections_and_overrides)
{
	struct sam_conf c = { 0 };
	CHECK(sam_conf_parse(&c,
			     "# comment\n[api]\nport = 9000\n  host=127.0.0.1  \n; other\n[service.api]\n"
			     "command = sam api --port 9000\nname = \"  spaced  \"\n[api]\nport = 9001\n",
			     NULL) == 0);
	long long port;
	CHECK(sam_conf_int(&c, "api", "port", 8765, 1, 65535, &port, NULL) == 0);
	CHECK_INT(port, 9001); /* the later line wins */
	CHECK_STR(sam_conf_str(&c, "api", "host", NULL), "127.0.0.1");
	CHECK_STR(sam_conf_str(&c, "service.api", "name", NULL), "  spaced  ");
	CHECK(sam_conf_str(&c, "api", "missing", NULL) == NULL);
	setenv("SAM_API_PORT", "7000", 1);
	CHECK(sam_conf_int(&c, "api", "port", 8765, 1, 65535, &port, NULL) == 0);
	CHECK_INT(port, 7000);
	setenv("SAM_API_PORT", "seventy", 1);
	struct sam_error err;
	CHECK_INT(sam_conf_int(&c, "api", "port", 8765, 1, 65535, &port, &err), SAM_EFORMAT);
	CHECK(strstr(err.msg, "api.port") != NULL);
	unsetenv("SAM_API_PORT");
	const char *secs[8];
	CHECK_INT(sam_conf_sections(&c, "service.", secs, 8), 1);
	bool b;
	CHECK(sam_conf_bool(&c, "x", "y", true, &b, NULL) == 0 && b);
	sam_conf_free(&c);
}

TEST(config_rejects_malformed_lines)
{
	struct sam_conf c = { 0 };
	struct sam_error err;
	CHECK_INT(sam_conf_parse(&c, "[api\n", &err), SAM_EFORMAT);
	sam_conf_free(&c);
	CHECK_INT(sam_conf_parse(&c, "[api]\nno equals sign\n", &err), SAM_EFORMAT);
	CHECK(strstr(err.msg, ":2:") != NULL);
	sam_conf_free(&c);
	/* a missing file is an empty config */
	CHECK(sam_conf_load(&c, "/nonexistent/sam.conf", &err) == 0);
	CHECK_INT(c.n, 0);
	sam_conf_free(&c);
}
