"""The compile pipeline's stages, each a function from typed inputs to a typed result; driver.py calls
them in order. They live here, not in the packages they draw on, because each composes several of
them (frontend + quant + passes to build, kernels + plan to bind and plan, codegen to emit).

  load.py     the model file -> Source (the model, its tokenizer, the options that depend on the model)
  program.py  Source -> Built (step graphs, one program or one per chip) -> Planned (kernels, memory plan)
  fit.py      the candidate loop (as asked, fp16 KV cache, fewer positions), levels and tiles, weights in SRAM
  emit.py     Planned -> Project (model.c/model.h and the files beside them); writing the output folder
"""
