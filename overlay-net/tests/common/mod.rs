pub mod mesh_lab;
