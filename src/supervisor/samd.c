/* samd.c - main() of build/sam-supervise (placeholder until the supervisor lands). */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "sam-supervise: not implemented yet\n");
	return 1;
}
