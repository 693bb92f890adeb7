"""Overrides of the small synthetic world the marketing tests build (see conftest.synth)."""

SYNTH = ["data=synthetic", "data.generator.n_users=400", "data.generator.n_items=150",
         "data.generator.images=false", "data.generator.social_images=false"]
