from seg_jax.ablations.sweep import main

if __name__ == "__main__":
    main()
