// SPDX-License-Identifier: GPL-2.0
/*
 * The module of the kmod packaging example: it only says hello when it is loaded and goodbye
 * when it is removed, so that what the package does around it is all there is to look at.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init hello_init(void)
{
	pr_info("hello: loaded\n");
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("hello: unloaded\n");
}

module_init(hello_init);
module_exit(hello_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Example module of the kmod-hello package");
MODULE_VERSION("1.0");
