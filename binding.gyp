{
  "variables": {
    "wa_gen": "<!(bash scripts/gen-native.sh)"
  },
  "targets": [
    {
      "target_name": "agent_witness",
      "sources": ["native/addon.cc", "native/addon_loss.cc", "native/addon_hooks.cc", "native/batcher.cc", "native/loader.c", "native/loader_hooks.c", "native/loader_maps.c", "native/loader_stats.c", "native/layout.c", "native/sdnotify.c", "native/ledger_hash.cc", "native/ledger_hash_queue.cc", "native/flock.cc", "native/peercred.cc", "native/uprobe_attach.c", "native/addon_uprobe.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(bash scripts/build-deps.sh --print-include)",
        "<(wa_gen)",
        "native"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags": ["-O2", "-Wall"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["<!@(bash scripts/build-deps.sh --print-libs)", "-lpthread"],
      "ldflags": ["-Wl,--exclude-libs,ALL"]
    },
    {
      "target_name": "witness-exec",
      "type": "executable",
      "sources": ["native/exec_shim.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
