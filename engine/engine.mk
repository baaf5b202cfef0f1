# The engine's source files: the one list both builds use (kernel/Kbuild and
# mk/userspace.mk).  The engine is plain C with no #ifdef for either build;
# each build provides dd-env.h (kernel/dd-env.h, userspace/dd-env.h) and a
# block manager behind dd-bm.h.
DD_ENGINE_FILES := dd-codec dd-block dd-tree dd-space dd-refs dd-volume dd-scan dd-import dd-pool dd-walk dd-index
