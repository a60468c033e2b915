/* Prints the real and effective user ids: installed setuid root in a
 * container's rootfs, it shows whether exec raised the effective id. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
    return 0;
}
