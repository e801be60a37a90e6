/*
 * The demo closure's "hello": a static x86_64 Linux program with no libc, built by build.sh.
 * It prints the greeting kept in the demo-greeting-data store path (the reason this path
 * references that one) and exits 0; if the greeting cannot be read or written it says so on
 * stderr and exits 1, so an image missing that layer fails visibly instead of printing nothing.
 */
        .intel_syntax noprefix

        .set SYS_read, 0
        .set SYS_write, 1
        .set SYS_open, 2
        .set SYS_exit, 60
        .set BUFSIZE, 4096

        .section .rodata
greeting_path:
        .asciz "/nix/store/74k7gw8jnr3hnx22rjq7fqdcvxw446zd-demo-greeting-data-1.0/share/greeting.txt"
failure:
        .ascii "hello: cannot read the greeting\n"
        .set failure_len, . - failure

        .text
        .globl _start
_start:
        mov     eax, SYS_open
        lea     rdi, [rip + greeting_path]
        xor     esi, esi                /* O_RDONLY */
        xor     edx, edx
        syscall
        test    rax, rax
        js      fail
        mov     r12, rax                /* the greeting's fd */
        sub     rsp, BUFSIZE            /* the read buffer lives on the stack: no writable segment */

read_more:
        mov     eax, SYS_read
        mov     rdi, r12
        mov     rsi, rsp
        mov     edx, BUFSIZE
        syscall
        test    rax, rax
        js      fail
        jz      done                    /* end of file */
        mov     r13, rsp                /* r13: next byte to write, r14: bytes left */
        mov     r14, rax

write_more:
        mov     eax, SYS_write
        mov     edi, 1                  /* stdout */
        mov     rsi, r13
        mov     rdx, r14
        syscall
        test    rax, rax
        jle     fail
        add     r13, rax
        sub     r14, rax
        jnz     write_more
        jmp     read_more

done:
        mov     eax, SYS_exit
        xor     edi, edi
        syscall

fail:
        mov     eax, SYS_write
        mov     edi, 2                  /* stderr */
        lea     rsi, [rip + failure]
        mov     edx, failure_len
        syscall
        mov     eax, SYS_exit
        mov     edi, 1
        syscall

        .section .note.GNU-stack, "", @progbits
