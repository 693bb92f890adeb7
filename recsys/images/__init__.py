"""CNN image features for product and social images: encoders, transforms, safe loading,
a content-addressed on-disk feature cache and the dataset-level extraction API."""
