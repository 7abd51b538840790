/* The libFuzzer target (clang -fsanitize=fuzzer): the input bytes are the decisions fuzz_core.c takes, so the
 * checked-in corpus (corpus/) and any crash file replay with fuzz_driver FILE as well. README.md has the command. */
#include <stdint.h>
#include <stdlib.h>
#include "fuzz.h"

static fz_ctx g_ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_ctx.mutate = 1;
    g_ctx.op = -1;
    fz_install_reporters();
    if (fz_setup(&g_ctx) != 0) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_src s;
    fz_src_bytes(&s, data, size);
    fz_one(&g_ctx, &s);
    return 0;
}
