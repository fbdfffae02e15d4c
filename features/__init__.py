"""The feature contract: call-log schema and readers, outcome grading, prices, and the
text -> feature vector pipeline shared by training and serving.

Nothing is imported here eagerly: serving imports the light modules it needs
(`routing_text`, `text_stats`, `context`, `encoder`, `spec`, `featurizer`, `prices`) and never the
pandas-based readers.
"""
