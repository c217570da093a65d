"""Community forum: categories, threads, posts, Q&A accepted answers, reactions, read tracking."""
