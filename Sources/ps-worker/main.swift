print("ps-worker: not built yet")
