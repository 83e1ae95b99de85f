print("ps-train: not built yet")
