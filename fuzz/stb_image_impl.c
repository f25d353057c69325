/* stb_image's implementation compiled into the image fuzz harness, so that
 * it is instrumented for coverage and the sanitizers (the library itself
 * links Debian's libstb, whose definitions this copy overrides). */
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
