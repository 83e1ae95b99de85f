print("ps-soak: not built yet")
